"""The `stockq` command: noun sub-apps with verb commands, over functions callable from Python."""

from __future__ import annotations

import os
from typing import Annotated, Any

import sqlalchemy.exc
import typer
from typer.core import TyperGroup

from stockq import errors
from stockq.cli import render
from stockq.cli.context import AppState
from stockq.settings import Settings

EXIT_ERROR = 1


class StockqGroup(TyperGroup):
    """Maps every error to one line on stderr and a stable exit code; a traceback only with STOCKQ_DEBUG=1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except errors.StockqError as exc:
            render.error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except sqlalchemy.exc.OperationalError as exc:
            if os.environ.get("STOCKQ_DEBUG"):
                raise
            render.error(f"The database is unavailable: {_first_line(exc.orig or exc)}")
            raise typer.Exit(EXIT_ERROR) from None
        except sqlalchemy.exc.DBAPIError as exc:
            if os.environ.get("STOCKQ_DEBUG"):
                raise
            render.error(f"Database error: {_first_line(exc.orig or exc)}")
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            render.error("Interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("STOCKQ_DEBUG") or _is_exit(exc):
                raise
            render.error(
                f"Unexpected error: {type(exc).__name__}: {_first_line(exc)} (STOCKQ_DEBUG=1 shows the traceback)"
            )
            raise typer.Exit(EXIT_ERROR) from None


def _is_exit(exc: BaseException) -> bool:
    """typer's own control flow (Exit, Abort, usage errors) passes through untouched."""
    return type(exc).__module__.startswith("typer")


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


app = typer.Typer(
    cls=StockqGroup,
    help="stockq: a SQL-table job queue for the warehouse, with artisan-style queue commands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main_callback(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="STOCKQ_DATABASE_URL", help="SQLAlchemy URL; default: ./stockq.db"),
    ] = None,
) -> None:
    """stockq: workers, failed jobs, imports, PrestaShop sync and warehouse stock, from one command."""
    ctx.obj = AppState(settings=Settings.from_env().with_database(database_url))


def _register() -> None:
    from stockq.cli import demo as demo_cli
    from stockq.cli import imports as imports_cli
    from stockq.cli import integrations as integrations_cli
    from stockq.cli import migrate as migrate_cli
    from stockq.cli import products as products_cli
    from stockq.cli import queue as queue_cli
    from stockq.cli import warehouse as warehouse_cli

    app.command("demo")(demo_cli.demo)
    app.command("migrate")(migrate_cli.migrate)
    app.add_typer(queue_cli.app, name="queue")
    app.add_typer(warehouse_cli.app, name="warehouse")
    app.add_typer(products_cli.app, name="products")
    app.add_typer(integrations_cli.app, name="integrations")
    app.add_typer(imports_cli.app, name="imports")
    integrations_cli.app.command("run-imports")(imports_cli.run_imports)


def main() -> None:
    app(prog_name="stockq")


_register()
__all__ = ["app", "main"]
