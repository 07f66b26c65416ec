"""Configuration, read once from the environment into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_SQLITE_FILE = "stockq.db"


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Every STOCKQ_* variable, parsed.

    database_url: any SQLAlchemy URL; the default is the SQLite file ``stockq.db`` in the working directory.
    env: ``production`` makes destructive commands ask before they act.
    job_modules: modules imported at worker start so that their job classes register themselves.
    import_root: local import sources must sit below this directory.
    lease_seconds: how long a reservation lasts without renewal; workers renew it while a job runs.
    """

    database_url: str
    env: str = "local"
    job_modules: tuple[str, ...] = ()
    import_root: Path = field(default_factory=Path.cwd)
    lease_seconds: int = 30
    connection_name: str = "database"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        url = env.get("STOCKQ_DATABASE_URL") or default_database_url()
        modules = tuple(m.strip() for m in env.get("STOCKQ_JOBS", "").split(",") if m.strip())
        lease = int(env.get("STOCKQ_LEASE_SECONDS", "30"))
        if lease < 2:
            raise ValueError("STOCKQ_LEASE_SECONDS must be at least 2")
        return cls(
            database_url=url,
            env=env.get("STOCKQ_ENV", "local"),
            job_modules=modules,
            import_root=Path(env.get("STOCKQ_IMPORT_ROOT") or Path.cwd()).resolve(),
            lease_seconds=lease,
        )

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def with_database(self, url: str | None) -> Settings:
        return self if not url else replace(self, database_url=url)


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"
