from __future__ import annotations

import os
import subprocess
import sys


def test_shell_completion_script_and_suggestions() -> None:
    # --show-completion detects the user's shell from the parent processes, which a detached runner (cron, CI
    # agents) may not have; typer's own switch makes it take the shell named on the command line instead.
    named_shell = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run([sys.executable, "-m", "stockq", "--show-completion", "bash"], capture_output=True,
                            text=True, timeout=60, env=named_shell)  # fmt: skip
    assert script.returncode == 0 and "_stockq_completion" in script.stdout
    env = {**os.environ, "COMP_WORDS": "stockq queue re", "COMP_CWORD": "2", "_STOCKQ_COMPLETE": "complete_bash"}
    suggestions = subprocess.run([sys.executable, "-m", "stockq"], env=env, capture_output=True, text=True, timeout=60)
    assert set(suggestions.stdout.split()) == {"retry", "restart"}
