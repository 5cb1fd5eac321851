"""`ecohub evidence`: the certificates and lab reports a market's regimes need, per product and market."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.certify.domain import MAX_EVIDENCE_BYTES
from ecohub.cli.common import DataDir, JsonOut, console, emit, handle_errors, open_services
from ecohub.errors import ErrorCode, InvalidInput, PayloadTooLarge

evidence_app = typer.Typer(help="certification evidence: certificates and lab reports per product and market",
                           no_args_is_help=True)
ACTOR = "operator:cli"


@evidence_app.command("add")
@handle_errors
def add(file: Path = typer.Argument(..., help="the certificate or lab report (PDF, at most 10 MiB)"),
        model: str = typer.Option(..., "--model"), market: str = typer.Option(..., "--market"),
        regime: str = typer.Option(..., "--regime", help="a regime of the market's profile, e.g. CE-RED, FCC, CCC"),
        issuer: str = typer.Option(..., "--issuer", help="the notified body, lab or authority"),
        number: str = typer.Option(..., "--number", help="certificate or report number"),
        valid_until: str = typer.Option(..., "--valid-until", help="YYYY-MM-DD, last day it is valid"),
        valid_from: str | None = typer.Option(None, "--valid-from", help="YYYY-MM-DD (default today)"),
        scope: str = typer.Option("", "--scope", help="what it covers, e.g. 'radio, EMC, safety'"),
        data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Record evidence as the brand (it counts at once); listings that now qualify can be put on sale."""
    try:
        size = file.stat().st_size
        if size > MAX_EVIDENCE_BYTES:
            raise PayloadTooLarge(f"{file} has {size} bytes; at most {MAX_EVIDENCE_BYTES} are kept",
                                  code=ErrorCode.EVIDENCE_TOO_LARGE)
        content = file.read_bytes()
    except OSError as err:
        raise InvalidInput(f"cannot read {file}: {err}", code=ErrorCode.INVALID_FILE) from err
    out = open_services(data_dir).certification.evidence.add(
        model, market=market, regime=regime, issuer=issuer, number=number, valid_until=valid_until,
        valid_from=valid_from, scope=scope, file_name=file.name, content=content, actor=ACTOR)
    if as_json:
        emit(out, as_json=True)
    else:
        console.print(f"evidence {out['id']}: {out['regime']} for {out['model']} in {out['market']}, "
                      f"{out['issuer']} no. {out['number']}, valid {out['valid_from']} → {out['valid_until']} "
                      f"({out['status']})")


@evidence_app.command("list")
@handle_errors
def list_evidence(model: str = typer.Option(..., "--model"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """A product's evidence, newest first, with whether each piece counts today."""
    rows = open_services(data_dir).certification.evidence.list(model)
    emit(rows, as_json=as_json, columns=["id", "market", "regime", "issuer", "number", "valid_until", "status",
                                         "valid", "problem"])


@evidence_app.command("accept")
@handle_errors
def accept(evidence_id: int = typer.Argument(..., min=1), data_dir: Path | None = DataDir,
           as_json: bool = JsonOut) -> None:
    """Accept a partner's submission as the brand."""
    out = open_services(data_dir).certification.evidence.accept(evidence_id, actor=ACTOR)
    if as_json:
        emit(out, as_json=True)
    else:
        console.print(f"evidence {evidence_id} accepted")


@evidence_app.command("revoke")
@handle_errors
def revoke(evidence_id: int = typer.Argument(..., min=1), reason: str = typer.Option(..., "--reason"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Revoke a piece of evidence: listings that relied on it are suspended at once."""
    out = open_services(data_dir).certification.evidence.revoke(evidence_id, reason=reason, actor=ACTOR)
    if as_json:
        emit(out, as_json=True)
    else:
        console.print(f"evidence {evidence_id} revoked: {reason}")
