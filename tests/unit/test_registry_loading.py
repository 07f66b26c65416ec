from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from stockq import errors
from stockq.queue import registry


def test_stockq_jobs_modules_and_entry_points_register_their_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("plugin_jobs_for_test")
    exec(
        "import stockq\nclass Resize(stockq.Job):\n    name = 'plugin.Resize'\n    def handle(self): pass\n",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, "plugin_jobs_for_test", module)
    entry = EntryPoint(name="plugin", value="plugin_jobs_for_test", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry] if group == registry.ENTRY_POINT_GROUP else [])
    registry.load_job_modules(["json"])
    assert "plugin.Resize" in registry.default_registry


def test_a_missing_job_module_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="no_such_module_xyz"):
        registry.load_job_modules(["no_such_module_xyz"], include_entry_points=False)
