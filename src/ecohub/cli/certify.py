"""`ecohub certify`: run the suite against a running hub and a real device process, verify reports, export the key."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from ecohub.certify.context import Timing
from ecohub.certify.domain import Declaration
from ecohub.certify.keys import load_public
from ecohub.certify.report import render_html
from ecohub.certify.runner import STEPS, RunOptions
from ecohub.certify.runner import Progress as OnProgress
from ecohub.certify.target import HubUnderTest, MqttAccess
from ecohub.cli.common import DataDir, JsonOut, completer, console, emit, handle_errors, open_services
from ecohub.errors import ErrorCode, InvalidInput
from ecohub.hub import free_port, read_runtime, running_hub

certify_app = typer.Typer(help="certification: the conformance and security suite, signed reports",
                          no_args_is_help=True)

STYLE = {"pass": "green", "fail": "red", "skip": "yellow", "na": "dim"}
FAILED_EXIT = 1
TOKEN_TTL_S = 4 * 3600  # outlives the longest run (every check at its cap); revoked when the run ends anyway


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InvalidInput(f"cannot read the {what} {path}: {err}", code=ErrorCode.INVALID_FILE) from err


@certify_app.command("run")
@handle_errors
def run(model: str = typer.Option(..., "--model", autocompletion=completer("model")),
        device_cmd: str | None = typer.Option(
            None, "--device-cmd", help="shell command starting the device; placeholders {credentials} (a JSON file "
            "of the test units) {host} {port} {did} {secret} {model}; env ECOHUB_DID/SECRET/HOST/PORT/CREDENTIALS. "
            "Default: `ecohub simulate` on the test units"),
        report: Path = typer.Option(Path("certification-report"), "--report", help="directory for report.json/html"),
        market: list[str] = typer.Option([], "--market", help="market code (repeatable); default: the product's "
                                         "target markets"),
        declaration: Path | None = typer.Option(None, "--declaration", help="product declaration JSON (security "
                                                "contact, support period, update mechanism, privacy, limits)"),
        fault: str | None = typer.Option(None, "--simulate-fault", help="give the default simulator a fault"),
        rate: float = typer.Option(1.0, "--rate", help="report rate of the default simulator"),
        fast: bool = typer.Option(False, "--fast", help="short timeouts (a local simulator)"),
        data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Provision two test units, start the device process, run every check, write a signed report.

    Attaches to the hub running on the data dir (`ecohub up`), else starts one for the run."""
    _quiet_broker_logs()
    services = open_services(data_dir)
    decl = Declaration.from_document(_read_json(declaration, "declaration") if declaration else None)
    options = RunOptions(model=model, device_cmd=device_cmd, markets=market, declaration=decl, rate_hz=rate,
                         fault=fault, timing=Timing.fast() if fast else Timing(),
                         simulator_data_dir=services.settings.data_dir)
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}"
                  f"/{len(STEPS)}"), TimeElapsedColumn(), console=console, transient=True,
                  disable=as_json) as progress:
        task = progress.add_task(f"certifying {model}", total=len(STEPS))

        def on_progress(event: str, check_id: str, result: dict[str, Any] | None) -> None:
            if event == "start":
                progress.update(task, description=check_id)
                return
            assert result is not None
            progress.advance(task)
            style = STYLE.get(result["status"], "")
            progress.console.print(f"[{style}]{result['status']:>4}[/{style}] {check_id} [dim]{result['reason']}[/dim]")

        doc = asyncio.run(_certify(services, options, on_progress))
    report.mkdir(parents=True, exist_ok=True)
    (report / "report.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    (report / "report.html").write_text(render_html(doc))
    if as_json:
        emit(doc, as_json=True)
    else:
        _summary(doc, report)
    if not doc["passed"]:
        raise typer.Exit(FAILED_EXIT)


async def _certify(services: Services, options: RunOptions, on_progress: OnProgress) -> dict[str, Any]:
    async with hub_under_test(services) as hub:
        return await services.certification.run(hub, options, on_progress=on_progress)


@asynccontextmanager
async def hub_under_test(services: Services) -> AsyncIterator[HubUnderTest]:
    """The hub running on the data dir (attached), else one composed here for the run and stopped after it (started);
    either way the suite reaches it only through its API (an operator token minted for the run) and its broker."""
    runtime = read_runtime(services.settings.data_dir)
    if runtime is not None:
        mqtt = runtime["mqtt"]
        assert isinstance(mqtt, dict)
        with _operator_token(services) as token:
            yield _target(services, api_url=str(runtime["http"]), token=token, mqtt_host=str(mqtt["host"]),
                          mqtt_port=int(mqtt["port"]), origin="attached")
        return
    async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()) as hub:
        assert hub.runtime.http_url and hub.runtime.mqtt_port
        with _operator_token(services) as token:
            yield _target(services, api_url=hub.runtime.http_url, token=token,
                          mqtt_host=hub.runtime.mqtt_host or "127.0.0.1", mqtt_port=hub.runtime.mqtt_port,
                          origin="started")


def _target(services: Services, *, api_url: str, token: str, mqtt_host: str, mqtt_port: int,
            origin: str) -> HubUnderTest:
    # the data dir's service password is the one its hub's broker accepts from the service user (the probe)
    return HubUnderTest(api_url=api_url, token=token, origin=origin,
                        mqtt=MqttAccess(host=mqtt_host, port=mqtt_port, password=services.service_password),
                        max_payload=services.settings.mqtt.max_payload)


@contextmanager
def _operator_token(services: Services) -> Iterator[str]:
    """An operator token for one run, revoked when it ends."""
    minted = services.tokens.create(role="operator", label="ecohub certify run", ttl_s=TOKEN_TTL_S)
    try:
        yield str(minted["token"])
    finally:
        services.tokens.revoke(str(minted["token_id"]))


def _quiet_broker_logs() -> None:
    # The suite provokes refusals on purpose (wrong secrets, foreign topics): their warnings would bury the progress.
    for name in ("gmqtt", "nats", "ecohub.connect", "ecohub.sdk"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _summary(doc: dict[str, Any], where: Path) -> None:
    checks = Table(title=f"{doc['model']} — spec {doc['spec_hash'][:12]}…")
    for col in ("check", "status", "ms", "required by", "reason"):
        checks.add_column(col)
    for c in doc["checks"]:
        style = STYLE.get(c["status"], "")
        checks.add_row(c["id"], f"[{style}]{c['status']}[/{style}]", str(c["duration_ms"]),
                       ", ".join(c.get("required_by", [])), c["reason"][:120])
    console.print(checks)
    markets = Table(title="markets")
    for col in ("market", "profile", "checks", "failing required checks", "evidence needed to open"):
        markets.add_column(col)
    for m in doc["markets"]:
        markets.add_row(m["market"], ", ".join(m["profiles"]), "[green]pass[/green]" if m["passed"] else
                        "[red]fail[/red]", ", ".join(m["failing"]), ", ".join(m.get("evidence_required", [])))
    console.print(markets)
    console.print("a market opens only with valid evidence for each regime too: [bold]ecohub evidence add[/bold]")
    verdict = "[green]PASSED[/green]" if doc["passed"] else "[red]FAILED[/red]"
    console.print(f"{verdict}  report {doc['report_id']} → {where / 'report.json'}, {where / 'report.html'}")


@certify_app.command("verify")
@handle_errors
def verify(path: Path = typer.Argument(..., help="report.json"),
           public_key: Path | None = typer.Option(None, "--public-key", help="the brand's public key (PEM); "
                                                  "default: this data dir's brand key"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Check a report's signature, expiry and that it is for the product's current spec."""
    services = open_services(data_dir)
    doc = _read_json(path, "report")
    key = load_public(public_key.read_bytes()) if public_key else None
    verdict = services.certification.verify(doc, public_key=key)
    out = {**verdict.to_dict(), "report_id": doc.get("report_id") if isinstance(doc, dict) else None,
           "model": doc.get("model") if isinstance(doc, dict) else None,
           "passed": doc.get("passed") if isinstance(doc, dict) else None}
    if as_json:
        emit(out, as_json=True)
    elif verdict.valid:
        console.print(f"[green]valid[/green]: report {out['report_id']} for {out['model']} "
                      f"({'passed' if out['passed'] else 'failed'}), signed by the brand key, spec current")
    else:
        console.print("[red]invalid[/red]:")
        for p in verdict.problems:
            console.print(f"  • {p}")
    if not verdict.valid:
        raise typer.Exit(FAILED_EXIT)


@certify_app.command("public-key")
@handle_errors
def public_key(data_dir: Path | None = DataDir) -> None:
    """Print the brand's Ed25519 public key (PEM) that reports are signed with."""
    print(open_services(data_dir).certification.public_key_pem(), end="")


@certify_app.command("list")
@handle_errors
def list_reports(model: str | None = typer.Option(None, "--model", autocompletion=completer("model")),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Recorded reports, newest first."""
    emit(open_services(data_dir).certification.list(model), as_json=as_json,
         columns=["report_id", "model", "passed", "markets_passed", "issued_at", "expires_at"])
