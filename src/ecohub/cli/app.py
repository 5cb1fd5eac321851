"""The `ecohub` command line: thin commands that parse, call a service and render."""

from __future__ import annotations

import typer

from ecohub.certify.cli import certify_app
from ecohub.cli import connect_cmds, ecosystem_cmds, hub_cmds, worker_cmds
from ecohub.privacy.cli import register as register_privacy

app = typer.Typer(name="ecohub", help="ecohub: run a hardware ecosystem on one IoT cloud.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
hub_cmds.register(app)
connect_cmds.register(app)
ecosystem_cmds.register(app)
worker_cmds.register(app)
app.add_typer(certify_app, name="certify")
register_privacy(app)


def main() -> None:
    """Entry point of the `ecohub` script."""
    app()
