"""CLI of the ecosystem context: spec import and products here; the registry commands live in ecohub.ecosystem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ecohub.cli import design as design_cli
from ecohub.cli import registry as registry_cli
from ecohub.cli import supply as cli_supply
from ecohub.cli.common import DataDir, JsonOut, completer, console, emit, emit_page, handle_errors, open_services
from ecohub.ecosystem.domain import Stage
from ecohub.errors import ErrorCode, InvalidInput
from ecohub.spec import SpecInvalid, diff_specs, parse_spec
from ecohub.spec.diff import compatible

spec_app = typer.Typer(help="product specs (miot-spec-v2 documents)", no_args_is_help=True)
product_app = typer.Typer(help="products and their lifecycle", no_args_is_help=True)
ModelArg = typer.Argument(..., help="model id, e.g. acme.plug.v1", autocompletion=completer("model"))
PartnerOpt = typer.Option(None, "--partner", help="partner id", autocompletion=completer("partner"))


def register(app: typer.Typer) -> None:
    """Attach the sub-apps."""
    app.add_typer(spec_app, name="spec")
    app.add_typer(product_app, name="product")
    registry_cli.register(app)
    cli_supply.register(app)
    design_cli.register(app)


@spec_app.command("import")
@handle_errors
def spec_import(
    file: Path = typer.Argument(..., help="a miot-spec-v2 instance document (JSON)"),
    model: str = typer.Option(..., "--model", help="model id, e.g. acme.plug.v1"),
    partner: str | None = PartnerOpt,
    category: str | None = typer.Option(None, "--category"),
    market: list[str] | None = typer.Option(None, "--market", help="target market (repeat); leaving `defined` "
                                            "needs the definition: category, markets, price and forecast"),
    price: str | None = typer.Option(None, "--price", help="target price"),
    currency: str | None = typer.Option(None, "--currency", help="currency of the target price (default USD)"),
    forecast: int | None = typer.Option(None, "--forecast", help="forecast annual units"),
    stage: Stage | None = typer.Option(None, "--stage", help="how far a new product walks its lifecycle (default: "
                                       "as far as its definition allows, up to certification)"),
    major: bool = typer.Option(False, "--major", help="a breaking change as a new major version (back to "
                               "certification)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Import a spec document unchanged; every problem is reported with its path."""
    document = _read_spec(file)
    services = open_services(data_dir)
    view = services.products.import_spec(document, model=model, actor="cli", partner_id=partner, category=category,
                                         stage=stage, major=major, target_markets=market or None, target_price=price,
                                         price_currency=currency, forecast_volume=forecast)
    spec = services.products.compiled(model).spec
    out = {**view.to_dict(), "services": len(spec.services), "properties": len(spec.properties())}
    emit(out, as_json=as_json)
    if view.definition_missing and not as_json:
        console.print(f"[yellow]{model} stays at {view.stage}[/yellow]: its definition lacks "
                      f"{', '.join(view.definition_missing)} (give --category, --market, --price and --forecast, "
                      "or `ecohub product define`)")


@spec_app.command("diff")
@handle_errors
def spec_diff(old: Path = typer.Argument(..., help="the current spec document (JSON)"),
              new: Path = typer.Argument(..., help="the candidate spec document (JSON)"),
              as_json: bool = JsonOut) -> None:
    """What changed between two spec versions, and whether the new one only adds (exit 1 when it breaks)."""
    try:
        before, after = parse_spec(_read_spec(old)), parse_spec(_read_spec(new))
    except SpecInvalid as err:
        raise InvalidInput(f"a spec has {len(err.problems)} problem(s): {err}", code=ErrorCode.INVALID_SPEC) from err
    changes = diff_specs(before, after)
    ok = compatible(changes)
    rows = [{"path": c.path, "kind": c.kind, "detail": c.detail, "breaking": c.breaking} for c in changes]
    emit({"compatible": ok, "changes": rows} if as_json else rows, as_json=as_json,
         columns=["path", "kind", "detail", "breaking"])
    if not as_json:
        console.print("compatible: only additions" if ok else "[red]breaking[/red]: publish as a new major version")
    if not ok:
        raise typer.Exit(1)


def _read_spec(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except FileNotFoundError as err:
        raise InvalidInput(f"no such file: {file}", code=ErrorCode.FILE_NOT_FOUND) from err
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{file} is not JSON: {err}", code=ErrorCode.BAD_JSON) from err


@product_app.command("list")
@handle_errors
def product_list(partner: str | None = PartnerOpt, stage: str | None = typer.Option(None),
                 category: str | None = typer.Option(None, "--category"),
                 limit: int = typer.Option(1000, "--limit"), offset: int = typer.Option(0, "--offset", min=0),
                 everything: bool = typer.Option(False, "--all", help="every product, not only the first --limit"),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Products with their stage and spec version."""
    services = open_services(data_dir)
    emit_page(lambda skip, n: [p.to_dict() for p in services.products.list(
        partner_id=partner, stage=stage, category=category, limit=n, offset=skip)],
        limit=limit, offset=offset, everything=everything, as_json=as_json,
        columns=["model", "partner_id", "category", "stage", "spec_version"],
        total=lambda: services.products.count(partner_id=partner, stage=stage, category=category))


@product_app.command("show")
@handle_errors
def product_show(model: str = ModelArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """One product with its lifecycle history."""
    services = open_services(data_dir)
    emit({**services.products.get(model).to_dict(), "history": services.products.history(model)}, as_json=as_json)


@product_app.command("transition")
@handle_errors
def product_transition(model: str = ModelArg, to: Stage = typer.Argument(...),
                       reason: str = typer.Option("", "--reason"),
                       data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Move a product along its lifecycle (guards apply)."""
    services = open_services(data_dir)
    emit(services.products.transition(model, to, actor="cli", reason=reason).to_dict(), as_json=as_json)


@product_app.command("define")
@handle_errors
def product_define(model: str = ModelArg, category: str | None = typer.Option(None, "--category"),
                   market: list[str] | None = typer.Option(None, "--market", help="target market (repeat)"),
                   price: str | None = typer.Option(None, "--price", help="target price"),
                   currency: str | None = typer.Option(None, "--currency"),
                   forecast: int | None = typer.Option(None, "--forecast", help="forecast annual units"),
                   data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Set the brand's definition of a product: category, target markets, target price, forecast (the ID design:
    `ecohub design upload`)."""
    services = open_services(data_dir)
    emit(services.products.define(model, actor="cli", category=category, target_markets=market or None,
                                  target_price=price, price_currency=currency,
                                  forecast_volume=forecast).to_dict(), as_json=as_json)


@product_app.command("history")
@handle_errors
def product_history(model: str = ModelArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Every recorded lifecycle transition (who, when, why)."""
    emit(open_services(data_dir).products.history(model), as_json=as_json,
         columns=["from", "to", "actor", "reason", "at"])
