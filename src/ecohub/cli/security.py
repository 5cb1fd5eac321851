"""CLI of the fleet security audit: run it, read findings, acknowledge or suppress them, mark firmware vulnerable."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.cli.common import DataDir, JsonOut, emit, handle_errors, open_services

security_app = typer.Typer(help="fleet security audit: findings about devices and products", no_args_is_help=True)
ACTOR = "cli"  # the CLI works on the data dir as its operator


def register(app: typer.Typer) -> None:
    """Attach `ecohub security …`."""
    app.add_typer(security_app, name="security")


@security_app.command("audit")
@handle_errors
def audit(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Run every check now: opens new findings, refreshes the ones still true, resolves the ones gone."""
    emit(open_services(data_dir).security.service.audit(), as_json=as_json)


@security_app.command("findings")
@handle_errors
def findings(severity: str | None = typer.Option(None, "--severity", help="critical|high|medium|low"),
             kind: str | None = typer.Option(None, "--kind", help="a check id (ecohub security checks)"),
             status: str | None = typer.Option(None, "--status", help="open|acknowledged|suppressed|resolved"),
             limit: int = typer.Option(100, "--limit", min=1, max=1000),
             offset: int = typer.Option(0, "--offset", min=0),
             data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Findings, most severe and most recent first."""
    rows = open_services(data_dir).security.service.findings(severity=severity, kind=kind, status=status,
                                                             limit=limit, offset=offset)
    emit(rows, as_json=as_json, columns=["id", "severity", "status", "kind", "subject", "reason"])


@security_app.command("checks")
@handle_errors
def checks(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """The checks the audit runs."""
    emit([c.to_dict() for c in open_services(data_dir).security.service.checks], as_json=as_json)


@security_app.command("acknowledge")
@handle_errors
def acknowledge(finding_id: str, reason: str = typer.Option(..., "--reason"), data_dir: Path | None = DataDir,
                as_json: bool = JsonOut) -> None:
    """Acknowledge a finding (seen, being handled); audited."""
    emit(open_services(data_dir).security.service.decide(finding_id, "acknowledge", reason=reason, caller=None,
                                                         actor=ACTOR), as_json=as_json)


@security_app.command("suppress")
@handle_errors
def suppress(finding_id: str, reason: str = typer.Option(..., "--reason"), data_dir: Path | None = DataDir,
             as_json: bool = JsonOut) -> None:
    """Suppress a finding (accepted risk: not raised again for this subject); audited."""
    emit(open_services(data_dir).security.service.decide(finding_id, "suppress", reason=reason, caller=None,
                                                         actor=ACTOR), as_json=as_json)


@security_app.command("vulnerable")
@handle_errors
def vulnerable(model: str = typer.Option(..., "--model"), version: str = typer.Option(..., "--version"),
               reason: str = typer.Option(..., "--reason", help="e.g. the CVE"), data_dir: Path | None = DataDir,
               as_json: bool = JsonOut) -> None:
    """Mark a firmware version of a model vulnerable; audited."""
    emit(open_services(data_dir).security.service.mark_vulnerable(model, version, reason=reason, caller=None,
                                                                  actor=ACTOR), as_json=as_json)
