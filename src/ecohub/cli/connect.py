"""CLI of connect, twin and telemetry: provisioning, twins, dead letters, tokens, the simulator."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.live import Live

from ecohub.cli.common import DataDir, JsonOut, completer, console, emit, emit_page, handle_errors, open_services
from ecohub.errors import ErrorCode, InvalidInput, Unavailable
from ecohub.hub import read_runtime
from ecohub.sdk.faults import FAULTS
from ecohub.sdk.simulator import FleetStats, run_fleet

device_app = typer.Typer(help="devices: provisioning, twins, telemetry", no_args_is_help=True)
token_app = typer.Typer(help="API tokens", no_args_is_help=True)
Model = typer.Option(..., "--model", help="model id, e.g. acme.plug.v1", autocompletion=completer("model"))
Did = typer.Argument(..., help="the device id", autocompletion=completer("did"))
All = typer.Option(False, "--all", help="every row, not only the first --limit")


def register(app: typer.Typer) -> None:
    """Attach the sub-apps and commands."""
    app.add_typer(device_app, name="device")
    app.add_typer(token_app, name="token")
    app.command("dead-letters")(dead_letters)
    app.command("simulate")(simulate)


@device_app.command("provision")
@handle_errors
def provision(model: str = Model, count: int = typer.Option(1, "--count", min=1),
              cell: str | None = typer.Option(None, "--cell", help="region cell (default: the hub's default cell)"),
              data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Provision devices: did, secret and bind code are shown once (only a salted hash is kept)."""
    services = open_services(data_dir)
    rows = [d.to_dict() for d in services.devices.provision(model=model, count=count, cell=cell)]
    emit(rows, as_json=as_json, columns=["did", "secret", "bind_code", "model", "cell"])


@device_app.command("list")
@handle_errors
def device_list(model: str | None = typer.Option(None, "--model", autocompletion=completer("model")),
                cell: str | None = typer.Option(None, "--cell", autocompletion=completer("cell")),
                limit: int = typer.Option(100, "--limit"), offset: int = typer.Option(0, "--offset", min=0),
                everything: bool = All, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Provisioned devices, oldest first."""
    services = open_services(data_dir)
    emit_page(lambda skip, n: [d.to_dict() for d in services.devices.list(cell=cell, model=model,
                                                                          limit=skip + n)][skip:],
              limit=limit, offset=offset, everything=everything, as_json=as_json,
              columns=["did", "model", "cell", "status", "created_at"])


@device_app.command("twin")
@handle_errors
def twin(did: str = Did, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """The twin as the REST API returns it."""
    services = open_services(data_dir)
    info = services.devices.get(did)
    emit(services.twin.get(info.cell, did), as_json=as_json)


@device_app.command("telemetry")
@handle_errors
def telemetry(did: str = Did, key: str = typer.Option(..., "--key", help="siid.piid"), limit: int = typer.Option(20),
              data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Latest samples of one property."""
    services = open_services(data_dir)
    info = services.devices.get(did)
    emit(services.telemetry.series(info.cell, did, key, limit=limit), as_json=as_json, columns=["ts", "value"])


@device_app.command("revoke")
@handle_errors
def revoke(did: str = Did, data_dir: Path | None = DataDir) -> None:
    """Disable a device's credentials."""
    open_services(data_dir).devices.revoke(did)
    console.print(f"revoked {did}")


@handle_errors
def dead_letters(did: str | None = typer.Option(None, "--did", autocompletion=completer("did")),
                 cell: str | None = typer.Option(None, "--cell", autocompletion=completer("cell")),
                 limit: int = typer.Option(50, "--limit"), offset: int = typer.Option(0, "--offset", min=0),
                 everything: bool = All, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Messages the ingest refused, with the reason (newest first)."""
    services = open_services(data_dir)
    emit_page(lambda skip, n: services.dead_letters.list(cell=cell, did=did, limit=skip + n)[skip:], limit=limit,
              offset=offset, everything=everything, as_json=as_json,
              columns=["id", "cell", "did", "msg_id", "code", "reason"])


@token_app.command("list")
@handle_errors
def token_list(include_inactive: bool = typer.Option(False, "--all", help="also expired and revoked tokens"),
               data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Operator and partner tokens (never their secrets), newest first."""
    services = open_services(data_dir)
    emit(services.tokens.list(include_inactive=include_inactive), as_json=as_json,
         columns=["token_id", "role", "partner_id", "label", "created_at", "expires_at", "status"])


@token_app.command("revoke")
@handle_errors
def token_revoke(token_id: str, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    open_services(data_dir).tokens.revoke(token_id)
    emit({"token_id": token_id, "status": "revoked"}, as_json=as_json)


@token_app.command("create")
@handle_errors
def token_create(role: str = typer.Option(..., "--role", help="operator or partner"),
                 partner: str | None = typer.Option(None, "--partner"), label: str = typer.Option("", "--label"),
                 ttl: int | None = typer.Option(None, "--ttl", help="seconds until it expires"),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Mint a bearer token for the local hub (shown once)."""
    services = open_services(data_dir)
    emit(services.tokens.create(role=role, partner_id=partner, label=label, ttl_s=ttl), as_json=as_json)


@handle_errors
def simulate(model: str = Model, devices: int = typer.Option(5, "--devices", min=1),
             rate: float = typer.Option(1.0, "--rate", help="reports per second per device"),
             fault: str | None = typer.Option(None, "--fault", help="one of: " + ", ".join(FAULTS)),
             duration: float | None = typer.Option(None, "--duration", help="seconds (default: until Ctrl-C)"),
             credentials: Path | None = typer.Option(None, "--credentials",
                                                     help="JSON from `device provision --json` to reuse"),
             host: str | None = typer.Option(None, "--host"), port: int | None = typer.Option(None, "--port"),
             firmware_version: str | None = typer.Option(None, "--firmware-version",
                                                         help="the firmware the devices run (said when online)"),
             data_dir: Path | None = DataDir) -> None:
    """Run N SDK devices for a model against a hub; values are drawn inside the spec's ranges. They take firmware
    updates signed by the product's partner (its newest registered key) and countersigned by this hub's brand."""
    if fault is not None and fault not in FAULTS:
        raise InvalidInput(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}", code=ErrorCode.UNKNOWN_FAULT)
    services = open_services(data_dir)
    if host is None or port is None:
        runtime = read_runtime(services.settings.data_dir)
        if runtime is None:
            raise Unavailable("no hub is running on this data dir; start `ecohub up` or pass --host/--port",
                              code=ErrorCode.HUB_NOT_RUNNING)
        mqtt = runtime["mqtt"]
        assert isinstance(mqtt, dict)
        host, port = host or str(mqtt["host"]), port or int(mqtt["port"])
    if credentials is not None:
        creds = [c for c in json.loads(credentials.read_text()) if c.get("model") == model]
        if not creds:
            raise InvalidInput(f"{credentials} has no devices of model {model}", code=ErrorCode.NO_CREDENTIALS)
    else:
        creds = [d.to_dict() for d in services.devices.provision(model=model, count=devices)]
    spec = services.products.compiled(model).spec

    def render(stats: FleetStats) -> str:
        return (f"devices connected {stats.connected}/{len(creds)}  failed {stats.failed}  "
                f"reports {stats.reports}  events {stats.events}  requests answered {stats.requests}")

    trust = services.firmware.device_trust(model)
    with Live(console=console, refresh_per_second=4) as live:
        stats = asyncio.run(run_fleet(creds, {model: spec}, host=host, port=port, rate_hz=rate, duration_s=duration,
                                      fault=fault, on_progress=lambda s: live.update(render(s)),
                                      firmware_version=firmware_version, ota_trust=trust))
    console.print(render(stats))
    for e in stats.errors[:5]:
        console.print(f"[red]{e}[/red]")
