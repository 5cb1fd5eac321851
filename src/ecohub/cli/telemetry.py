"""CLI of telemetry's maintenance: retention policies, the prune/rollup job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ecohub.cli.common import DataDir, JsonOut, emit, handle_errors, open_services

telemetry_app = typer.Typer(help="telemetry: retention policies, rollups and pruning", no_args_is_help=True)
retention_app = typer.Typer(help="how long each product's telemetry is kept", no_args_is_help=True)
telemetry_app.add_typer(retention_app, name="retention")


@retention_app.command("show")
@handle_errors
def retention_show(model: str = typer.Option(..., "--model"), data_dir: Path | None = DataDir,
                   as_json: bool = JsonOut) -> None:
    """A product's retention as enforced: raw days, rollup days, per-property exceptions and the default."""
    emit(open_services(data_dir).telemetry.retention_of(model), as_json=as_json)


@retention_app.command("set")
@handle_errors
def retention_set(model: str = typer.Option(..., "--model"),
                  key: str | None = typer.Option(None, "--key", help="one property (siid.piid)"),
                  raw_days: int | None = typer.Option(None, "--raw-days", help="raw samples and events"),
                  rollup_days: int | None = typer.Option(None, "--rollup-days", help="hourly/daily rollups"),
                  data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Set a product's (or one property's) retention; give neither days to go back to the default."""
    emit(open_services(data_dir).telemetry.set_retention(model, key=key, raw_days=raw_days,
                                                         rollup_days=rollup_days), as_json=as_json)


@telemetry_app.command("prune")
@handle_errors
def prune(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Run the maintenance job now: roll up new samples, drop what retention says is expired; prints the counts."""
    report = open_services(data_dir).telemetry.maintain()
    emit([{"cell": cell, **r["rolled_up"], **{f"dropped_{k}": _names(v) if k == "partitions" else v
                                             for k, v in r["dropped"].items() if k != "cell"}}
          for cell, r in report.items()], as_json=as_json)


def _names(partitions: list[dict[str, Any]]) -> list[str]:
    return [p["partition"] for p in partitions]


@telemetry_app.command("partitions")
@handle_errors
def partitions(ahead: int | None = typer.Option(None, "--ahead", help="days of partitions to make ahead "
                                                "(default: telemetry.partitions_ahead)"),
               data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """PostgreSQL: make the missing daily partitions of telemetry and device events up to N days ahead, then list
    every partition (`made` marks the new ones). SQLite keeps one table: the list is empty."""
    rows = open_services(data_dir).telemetry.partitions_of(ahead=ahead)
    if not rows and not as_json:
        typer.echo("no partitioned tables here (SQLite keeps one table per store; PostgreSQL cells are "
                   "partitioned by migration 0011)")
        return
    emit(rows, as_json=as_json, columns=("cell", "table", "partition", "from", "to", "made"))
