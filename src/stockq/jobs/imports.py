"""Jobs of the `import` queue: ExecuteIntegrationTask runs one import profile; ``queue_due_imports`` is what
`stockq integrations run-imports` does (the manual's integrations:run-imports, every 5 minutes from cron)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

import stockq
from stockq import db, errors
from stockq.imports import profiles, runner
from stockq.queue import api
from stockq.settings import Settings
from stockq.warehouse._sql import utcnow

# A queued/running marker older than this is taken as lost (the job was cleared from the queue or its worker died
# for good) and the profile may be queued again.
QUEUED_STALE_AFTER = timedelta(hours=2)


class ExecuteIntegrationTask(stockq.Job):
    """Run one import profile (fetch, parse, upsert, inventory document); a failed run fails the job."""

    name = "ExecuteIntegrationTask"
    queue = "import"
    tries = 1
    timeout = 3600

    profile_id: int

    def handle(self) -> None:
        settings = Settings.from_env()
        engine = db.get_engine(settings.database_url)
        try:
            result = runner.run_import(engine, int(self.profile_id), import_root=settings.import_root)
        finally:
            with engine.begin() as conn:
                profiles.clear_queued(conn, int(self.profile_id))
        if result.failed:
            raise errors.StockqError(f"Import {result.profile} failed: {result.message}")

    def failed(self, exc: BaseException) -> None:
        engine = db.get_engine(Settings.from_env().database_url)
        with engine.begin() as conn:
            profiles.clear_queued(conn, int(self.profile_id))


def queue_due_imports(engine: Engine) -> list[profiles.Profile]:
    """Queue one ExecuteIntegrationTask per active, due profile that has no job queued or running, and move its
    next run on; all in one transaction (a job is queued exactly when its profile is marked). Returns them."""
    now = utcnow()
    with engine.begin() as conn:
        due = profiles.due_profiles(conn, now, stale_after=QUEUED_STALE_AFTER)
        for profile in due:
            api.dispatch(ExecuteIntegrationTask(profile_id=profile.id), conn=conn)
            profiles.mark_queued(conn, profile, now)
    return due
