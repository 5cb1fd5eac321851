"""`ecohub firmware` (signing keys, signed uploads, approval) and `ecohub ota` (campaigns and their progress)."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from ecohub.cli.common import DataDir, JsonOut, console, emit, handle_errors, open_services
from ecohub.errors import ErrorCode, InvalidInput
from ecohub.ota.domain import DEFAULT_STAGES, DEFAULT_THRESHOLD
from ecohub.protocol.messages import firmware_statement

firmware_app = typer.Typer(help="firmware images: partners' signing keys, signed uploads, the brand's approval",
                           no_args_is_help=True)
key_app = typer.Typer(help="partners' firmware signing keys", no_args_is_help=True)
firmware_app.add_typer(key_app, name="key")
ota_app = typer.Typer(help="over-the-air updates: staged campaigns and their progress", no_args_is_help=True)
campaign_app = typer.Typer(help="firmware campaigns", no_args_is_help=True)
ota_app.add_typer(campaign_app, name="campaign")
CHUNK = 1024 * 1024


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as err:
        raise InvalidInput(f"cannot read the signing key {path}: {err}", code=ErrorCode.INVALID_FILE) from err
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key", code=ErrorCode.INVALID_KEY)
    return key


@key_app.command("new")
@handle_errors
def key_new(out: Path = typer.Option(..., "--out", help="where to write the private key (PEM, 0600)"),
            as_json: bool = JsonOut) -> None:
    """Make a partner signing key pair; keep the private key with the build pipeline, register the public one."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as err:
        raise InvalidInput(f"{out} exists; not overwriting a key", code=ErrorCode.INVALID_FILE) from err
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    emit({"private_key": str(out), "public_key": base64.b64encode(public).decode()}, as_json=as_json)


@key_app.command("add")
@handle_errors
def key_add(partner: str = typer.Option(..., "--partner"),
            public_key: str = typer.Argument(..., help="base64 raw public key, or a PEM file"),
            data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Register a partner's public signing key."""
    value = Path(public_key).read_text() if Path(public_key).is_file() else public_key
    emit(open_services(data_dir).firmware.add_key(partner, value), as_json=as_json)


@firmware_app.command("upload")
@handle_errors
def upload(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
           model: str = typer.Option(..., "--model"), version: str = typer.Option(..., "--version"),
           signing_key: Path | None = typer.Option(None, "--signing-key", help="the partner's private key (PEM): "
                                                   "the image is signed here, the key never leaves this machine"),
           signature: str | None = typer.Option(None, "--signature", help="a base64 signature made elsewhere"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Upload a firmware image signed by its partner (`--signing-key` or `--signature`)."""
    if (signing_key is None) == (signature is None):
        raise InvalidInput("give exactly one of --signing-key or --signature", code=ErrorCode.INVALID_INPUT)
    if signing_key is not None:
        digest, size = hashlib.sha256(), 0
        for chunk in _read_file(file):
            digest.update(chunk)
            size += len(chunk)
        statement = firmware_statement(model, version, digest.hexdigest(), size)
        signature = base64.b64encode(_load_private(signing_key).sign(statement)).decode()
    assert signature is not None
    emit(open_services(data_dir).firmware.upload(_read_file(file), model=model, version=version,
                                                 signature=signature, actor="cli"), as_json=as_json)


@firmware_app.command("approve")
@handle_errors
def approve(image_id: int = typer.Argument(...), data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Countersign an image with the brand's key (the operator's approval)."""
    emit(open_services(data_dir).firmware.approve(image_id, actor="cli"), as_json=as_json)


@firmware_app.command("list")
@handle_errors
def list_images(model: str | None = typer.Option(None, "--model"), data_dir: Path | None = DataDir,
                as_json: bool = JsonOut) -> None:
    """Firmware images, newest first."""
    emit(open_services(data_dir).firmware.list(model=model), as_json=as_json,
         columns=["image_id", "model", "version", "status", "size", "sha256"])


def _stages(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as err:
        raise InvalidInput(f"--stages must be comma-separated percentages such as 1,10,50,100, got {text!r}",
                           code=ErrorCode.INVALID_STAGES) from err


@campaign_app.command("create")
@handle_errors
def campaign_create(model: str = typer.Option(..., "--model"), version: str = typer.Option(..., "--version"),
                    market: str | None = typer.Option(None, "--market", help="only devices of this market's cell"),
                    cell: str | None = typer.Option(None, "--cell"),
                    stages: str = typer.Option(",".join(map(str, DEFAULT_STAGES)), "--stages"),
                    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold",
                                                    help="failure rate (%) that halts the campaign"),
                    rollback: bool = typer.Option(False, "--rollback", help="back to an older version"),
                    max_in_flight: int | None = typer.Option(
                        None, "--max-in-flight", help="devices updating at once (0: no cap; default: the hub's "
                        "ota.max_in_flight)"),
                    max_per_minute: int = typer.Option(0, "--max-per-minute", help="offers a minute (0: no cap)"),
                    data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Start a staged rollout (a running hub on the data dir offers it within its next tick)."""
    c = open_services(data_dir).campaigns.create(model=model, version=version, market=market, cell=cell,
                                                 stages=_stages(stages), threshold=threshold, rollback=rollback,
                                                 max_in_flight=max_in_flight, max_per_minute=max_per_minute,
                                                 actor="cli")
    emit(_summary(c), as_json=as_json)


@campaign_app.command("list")
@handle_errors
def campaign_list(model: str | None = typer.Option(None, "--model"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Campaigns, newest first."""
    emit(open_services(data_dir).campaigns.list(model=model), as_json=as_json,
         columns=["campaign_id", "model", "version", "status", "stage_percent", "targets", "counts", "failure_rate"])


def _summary(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("campaign_id", "model", "version", "status", "reason", "stages", "stage", "targets",
                              "max_in_flight", "max_per_minute", "counts", "failure_rate")}


for _action in ("pause", "resume", "cancel"):
    def _make(action: str) -> None:
        @campaign_app.command(action)
        @handle_errors
        def act(campaign_id: int = typer.Argument(...), data_dir: Path | None = DataDir,
                as_json: bool = JsonOut) -> None:
            c = getattr(open_services(data_dir).campaigns, action)(campaign_id)
            emit(_summary(c), as_json=as_json)

        act.__doc__ = {"pause": "Stop offering; devices already updating finish.",
                       "resume": "Go on after a pause or an automatic halt.",
                       "cancel": "End the campaign; devices not yet offered never are."}[action]

    _make(_action)

def _caps(c: dict[str, Any]) -> str:
    caps = [f"{c['max_in_flight']} at once"] if c.get("max_in_flight") else []
    caps += [f"{c['max_per_minute']}/min"] if c.get("max_per_minute") else []
    return f"  at most {', '.join(caps)}" if caps else ""


STATE_STYLE = {"done": "green", "failed": "red", "skipped": "dim", "pending": "yellow", "cancelled": "dim"}


def render_status(c: dict[str, Any]) -> Group:
    """A campaign as a Rich view: a bar per stage (finished of its devices), counts, the devices not done."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=40),
                        TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[note]}"))
    for s in c["stage_progress"]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(s["counts"].items()))
        progress.add_task(f"stage {s['stage'] + 1} ({s['percent']:>3}%) {s['state']:<8}", total=max(s["devices"], 1),
                          completed=s["finished"], note=counts)
    head = (f"[bold]campaign {c['campaign_id']}[/bold] {c['model']} → {c['version']}"
            f"{' (rollback)' if c['rollback'] else ''}  status [bold]{c['status']}[/bold]  "
            f"failure rate {c['failure_rate']}% (halts over {c['threshold']:g}%){_caps(c)}  {c['reason']}")
    table = Table(title="devices not done", show_lines=False)
    for col in ("did", "stage", "state", "progress", "code", "message"):
        table.add_column(col)
    for d in [d for d in c["devices"] if d["state"] != "done"][:20]:
        style = STATE_STYLE.get(d["state"], "cyan")
        table.add_row(d["did"], str(d["stage"] + 1), f"[{style}]{d['state']}[/{style}]", str(d["progress"]),
                      str(d["code"] or ""), d["message"])
    return Group(head, progress, table)


@ota_app.command("status")
@handle_errors
def status(campaign_id: int = typer.Argument(...), watch: bool = typer.Option(False, "--watch",
                                                                                help="refresh until it ends"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """A campaign's progress per stage and per device (a Rich view; --json for the REST shape)."""
    services = open_services(data_dir)
    c = services.campaigns.get(campaign_id, devices=1000)
    if as_json:
        emit(c, as_json=True)
        return
    if not watch:
        console.print(render_status(c))
        return
    with Live(render_status(c), console=console, refresh_per_second=2) as live:
        while c["status"] in ("running", "paused"):
            time.sleep(1)
            c = services.campaigns.get(campaign_id, devices=1000)
            live.update(render_status(c))
