"""`ecohub app …`: register third-party apps (OAuth clients), list them, suspend and resume them."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.cli.common import DataDir, JsonOut, emit, handle_errors, open_services

app_app = typer.Typer(help="third-party apps: OAuth clients that act on users' granted devices", no_args_is_help=True)


@app_app.command("create")
@handle_errors
def create(name: str = typer.Option(..., "--name"),
           redirect_uri: list[str] = typer.Option(..., "--redirect-uri", help="exact redirect URI (repeatable)"),
           scope: list[str] | None = typer.Option(None, "--scope", help="a scope the app may ask for (repeatable)"),
           privacy_policy_url: str | None = typer.Option(None, "--privacy-policy-url"),
           partner: str | None = typer.Option(None, "--partner", help="the partner the app belongs to"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Register an app; prints its client id and its client secret (shown this once)."""
    svc = open_services(data_dir)
    try:
        out = svc.apps.registry.create(name=name, redirect_uris=redirect_uri, scopes=scope or None,
                                       privacy_policy_url=privacy_policy_url, partner_id=partner)
    finally:
        svc.close()
    emit(out if as_json else [{"client_id": out["client_id"], "client_secret": out["client_secret"],
                               "scopes": " ".join(out["scopes"])}], as_json=as_json)


@app_app.command("list")
@handle_errors
def list_apps(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Registered apps, newest first."""
    svc = open_services(data_dir)
    try:
        rows = svc.apps.registry.list()
    finally:
        svc.close()
    emit(rows if as_json else [{k: r[k] for k in ("client_id", "name", "status", "owner_partner")} for r in rows],
         as_json=as_json)


@app_app.command("suspend")
@handle_errors
def suspend(client_id: str, reason: str = typer.Option("", "--reason"), data_dir: Path | None = DataDir,
            as_json: bool = JsonOut) -> None:
    """Suspend an app: its tokens stop working at once."""
    svc = open_services(data_dir)
    try:
        emit(svc.apps.registry.suspend(client_id, reason=reason), as_json=as_json)
    finally:
        svc.close()


@app_app.command("resume")
@handle_errors
def resume(client_id: str, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Lift an app's suspension."""
    svc = open_services(data_dir)
    try:
        emit(svc.apps.registry.resume(client_id), as_json=as_json)
    finally:
        svc.close()


def register(app: typer.Typer) -> None:
    """Add `ecohub app` to the CLI."""
    app.add_typer(app_app, name="app")
