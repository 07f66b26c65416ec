from __future__ import annotations

import os
import subprocess
import sys


def test_shell_completion_script_and_suggestions() -> None:
    script = subprocess.run([sys.executable, "-m", "stockq", "--show-completion", "bash"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert script.returncode == 0 and "_stockq_completion" in script.stdout
    env = {**os.environ, "COMP_WORDS": "stockq queue re", "COMP_CWORD": "2", "_STOCKQ_COMPLETE": "complete_bash"}
    suggestions = subprocess.run([sys.executable, "-m", "stockq"], env=env, capture_output=True, text=True, timeout=60)
    assert set(suggestions.stdout.split()) == {"retry", "restart"}
