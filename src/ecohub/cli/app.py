"""The `ecohub` command line: thin commands that parse, call a service and render."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

import typer

from ecohub.cli import apps as apps_cmds
from ecohub.cli import broker as broker_cmds
from ecohub.cli import connect as connect_cmds
from ecohub.cli import ecosystem as ecosystem_cmds
from ecohub.cli import hub as hub_cmds
from ecohub.cli import workers as worker_cmds
from ecohub.cli.certify import certify_app
from ecohub.cli.common import EXIT_CODES_HELP
from ecohub.cli.evidence import evidence_app
from ecohub.cli.ota import firmware_app, ota_app
from ecohub.cli.privacy import register as register_privacy
from ecohub.cli.security import register as register_security
from ecohub.cli.telemetry import telemetry_app

app = typer.Typer(name="ecohub", help="ecohub: run a hardware ecosystem on one IoT cloud.\n\n" + EXIT_CODES_HELP,
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich")
hub_cmds.register(app)
connect_cmds.register(app)
ecosystem_cmds.register(app)
worker_cmds.register(app)
broker_cmds.register(app)
app.add_typer(certify_app, name="certify")
register_privacy(app)
app.add_typer(telemetry_app, name="telemetry")
register_security(app)
app.add_typer(evidence_app, name="evidence")
app.add_typer(firmware_app, name="firmware")
app.add_typer(ota_app, name="ota")
apps_cmds.register(app)

# The help panel of every top-level command, by name: a new command gets one line here (tests/cli checks that every
# command has a panel). Names not registered (yet) are harmless.
PANELS: dict[str, str] = {
    "init": "hub", "up": "hub", "demo": "hub", "api": "hub", "ingest": "hub", "broker": "hub", "token": "hub",
    "app": "hub",
    "partner": "ecosystem", "round": "ecosystem", "portfolio": "ecosystem", "kpi": "ecosystem",
    "spec": "ecosystem", "product": "ecosystem", "design": "ecosystem", "market": "ecosystem",
    "category": "ecosystem", "listing": "ecosystem", "catalogue": "ecosystem", "supplier": "ecosystem",
    "component": "ecosystem", "bom": "ecosystem", "demand": "ecosystem", "pricing": "ecosystem",
    "device": "devices", "simulate": "devices", "dead-letters": "devices", "telemetry": "devices",
    "firmware": "devices", "ota": "devices",
    "certify": "certification", "evidence": "certification", "security": "certification",
    "privacy": "privacy", "residency": "privacy", "audit": "privacy",
}


PANEL_ORDER = ["hub", "ecosystem", "devices", "certification", "privacy"]


def _assign_panels(root: typer.Typer) -> None:
    for command in root.registered_commands:
        if command.name in PANELS:
            command.rich_help_panel = PANELS[command.name]
    for group in root.registered_groups:
        if group.name in PANELS:
            group.rich_help_panel = PANELS[group.name]
    # the help lists panels in the order their first command appears: sort (stably) by panel
    rank = {panel: i for i, panel in enumerate(PANEL_ORDER)}
    root.registered_commands.sort(key=lambda c: rank.get(PANELS.get(c.name or "", ""), len(rank)))
    root.registered_groups.sort(key=lambda g: rank.get(PANELS.get(g.name or "", ""), len(rank)))


def package_version() -> str:
    """The installed distribution's version (the source tree's when run uninstalled)."""
    try:
        return dist_version("ecohub")
    except PackageNotFoundError:
        return "0+unknown"


def _version(value: bool) -> None:
    if value:
        print(f"ecohub {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """ecohub: run a hardware ecosystem on one IoT cloud."""


_assign_panels(app)


def main() -> None:
    """Entry point of the `ecohub` script."""
    app(prog_name="ecohub")
