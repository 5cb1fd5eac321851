"""CLI of industrial-design records and the pricing policy (on the data dir, as the brand)."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.cli.common import DataDir, JsonOut, emit, handle_errors, open_services
from ecohub.errors import ErrorCode, InvalidInput

design_app = typer.Typer(help="industrial-design versions: upload, list, approve or reject", no_args_is_help=True)
pricing_app = typer.Typer(help="the pricing policy: margin floor/ceiling, price band, costs", no_args_is_help=True)
DESIGN_COLUMNS = ["version", "kind", "filename", "size", "status", "uploaded_by", "decided_by"]


def register(app: typer.Typer) -> None:
    """Attach the sub-apps."""
    app.add_typer(design_app, name="design")
    app.add_typer(pricing_app, name="pricing")


@design_app.command("upload")
@handle_errors
def design_upload(file: Path = typer.Argument(..., help="a render (PNG/JPEG/WebP), drawing (PDF) or CAD file "
                                                        "(STEP/STL/glTF)"),
                  model: str = typer.Option(..., "--model"), kind: str | None = typer.Option(None, "--kind"),
                  note: str = typer.Option("", "--note"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Add a new design version; it waits for the brand's approval."""
    try:
        data = file.read_bytes()
    except FileNotFoundError as err:
        raise InvalidInput(f"no such file: {file}", code=ErrorCode.FILE_NOT_FOUND) from err
    emit(open_services(data_dir).ecosystem.designs.upload(model, data, filename=file.name, kind=kind, note=note,
                                                          actor="cli"), as_json=as_json)


@design_app.command("list")
@handle_errors
def design_list(model: str = typer.Option(..., "--model"), data_dir: Path | None = DataDir,
                as_json: bool = JsonOut) -> None:
    """Every design version of a product, newest first."""
    emit(open_services(data_dir).ecosystem.designs.list(model), as_json=as_json, columns=DESIGN_COLUMNS)


@design_app.command("approve")
@handle_errors
def design_approve(model: str = typer.Option(..., "--model"),
                   version: int | None = typer.Option(None, "--version", help="default: the current version"),
                   note: str = typer.Option("", "--note"), data_dir: Path | None = DataDir,
                   as_json: bool = JsonOut) -> None:
    """Approve a pending design version as the brand (audited)."""
    emit(open_services(data_dir).ecosystem.designs.decide(model, approve=True, version=version, note=note,
                                                          actor="cli"), as_json=as_json)


@design_app.command("reject")
@handle_errors
def design_reject(model: str = typer.Option(..., "--model"),
                  version: int | None = typer.Option(None, "--version", help="default: the current version"),
                  note: str = typer.Option("", "--note"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Reject a pending design version as the brand (audited)."""
    emit(open_services(data_dir).ecosystem.designs.decide(model, approve=False, version=version, note=note,
                                                          actor="cli"), as_json=as_json)


@pricing_app.command("show")
@handle_errors
def pricing_show(model: str = typer.Option("*", "--model"), market: str = typer.Option("*", "--market"),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """The effective settings; with a product, also its price and net margin in every listed market."""
    services = open_services(data_dir)
    policy = services.ecosystem.pricing.policy(model, market)
    if model == "*":
        emit(policy, as_json=as_json)
        return
    rows = services.ecosystem.pricing.report(model)
    emit({"policy": policy, "markets": rows} if as_json else rows, as_json=as_json,
         columns=["market", "price", "currency", "margin", "allowed_min", "allowed_max", "within_policy"])


@pricing_app.command("check")
@handle_errors
def pricing_check(model: str = typer.Option(..., "--model"), market: str = typer.Option(..., "--market"),
                  price: str | None = typer.Option(None, "--price", help="default: the converted target price"),
                  data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """BOM cost, allowed range, and the margin and verdict at a price."""
    emit(open_services(data_dir).ecosystem.pricing.quote(model, market, price), as_json=as_json)


@pricing_app.command("set")
@handle_errors
def pricing_set(model: str = typer.Option("*", "--model", help="a product, or * for all"),
                market: str = typer.Option("*", "--market", help="a market, or * for all"),
                floor: str | None = typer.Option(None, "--floor", help="minimum net margin, e.g. 0"),
                ceiling: str | None = typer.Option(None, "--ceiling", help="maximum net margin, e.g. 0.05"),
                band: str | None = typer.Option(None, "--band", help="± share around the target price, e.g. 0.25"),
                other_rate: str | None = typer.Option(None, "--other-cost-rate",
                                                      help="share of the ex-tax price for other costs"),
                other_fixed: str | None = typer.Option(None, "--other-cost-fixed",
                                                       help="other costs per unit (product currency)"),
                tax: str | None = typer.Option(None, "--tax-rate", help="tax included in listing prices"),
                data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Set the brand's pricing settings ("" clears one, so it inherits again)."""
    emit(open_services(data_dir).ecosystem.pricing.set_policy(
        model, market, actor="cli", margin_floor=floor, margin_ceiling=ceiling, band=band,
        other_cost_rate=other_rate, other_cost_fixed=other_fixed, tax_rate=tax), as_json=as_json)
