"""The `ecohub` command line: thin commands that parse, call a service and render."""

from __future__ import annotations

import typer

from ecohub.cli import apps as apps_cmds
from ecohub.cli import broker as broker_cmds
from ecohub.cli import connect as connect_cmds
from ecohub.cli import ecosystem as ecosystem_cmds
from ecohub.cli import hub as hub_cmds
from ecohub.cli import workers as worker_cmds
from ecohub.cli.certify import certify_app
from ecohub.cli.privacy import register as register_privacy
from ecohub.cli.telemetry import telemetry_app

app = typer.Typer(name="ecohub", help="ecohub: run a hardware ecosystem on one IoT cloud.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
hub_cmds.register(app)
connect_cmds.register(app)
ecosystem_cmds.register(app)
worker_cmds.register(app)
broker_cmds.register(app)
app.add_typer(certify_app, name="certify")
register_privacy(app)
app.add_typer(telemetry_app, name="telemetry")
apps_cmds.register(app)


def main() -> None:
    """Entry point of the `ecohub` script."""
    app()
