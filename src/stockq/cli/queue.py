"""`stockq queue …`: the artisan queue commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Workers, failed jobs and queues (the artisan queue:* commands).", no_args_is_help=True)
