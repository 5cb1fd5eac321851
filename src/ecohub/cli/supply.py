"""CLI of the supply chain: suppliers, components, BOMs, aggregated demand, supplier dependency."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.cli.common import DataDir, JsonOut, emit, handle_errors, open_services
from ecohub.errors import ErrorCode, InvalidInput

supplier_app = typer.Typer(help="suppliers and the partners depending on them", no_args_is_help=True)
component_app = typer.Typer(help="components", no_args_is_help=True)
bom_app = typer.Typer(help="bills of materials", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the sub-apps and commands."""
    app.add_typer(supplier_app, name="supplier")
    app.add_typer(component_app, name="component")
    app.add_typer(bom_app, name="bom")
    app.command("demand")(demand)


@supplier_app.command("add")
@handle_errors
def supplier_add(name: str, country: str = typer.Option(..., "--country"), kind: str = typer.Option(..., "--kind"),
                 supplier_id: str | None = typer.Option(None, "--id"), data_dir: Path | None = DataDir,
                 as_json: bool = JsonOut) -> None:
    """Register a supplier."""
    emit(open_services(data_dir).ecosystem.supply.add_supplier(name=name, country=country, kind=kind,
                                                               supplier_id=supplier_id), as_json=as_json)


@supplier_app.command("list")
@handle_errors
def supplier_list(kind: str | None = typer.Option(None, "--kind"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Suppliers."""
    emit(open_services(data_dir).ecosystem.supply.suppliers(kind=kind), as_json=as_json)


@supplier_app.command("deps")
@handle_errors
def supplier_deps(min_partners: int = typer.Option(1, "--min-partners"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Which suppliers many partners depend on."""
    emit(open_services(data_dir).ecosystem.supply.dependency(min_partners=min_partners), as_json=as_json,
         columns=["supplier_id", "name", "kind", "partners", "partner_share_percent", "products", "components"])


@component_app.command("add")
@handle_errors
def component_add(part_no: str, supplier: str = typer.Option(..., "--supplier"),
                  name: str = typer.Option(..., "--name"), kind: str = typer.Option(..., "--kind"),
                  unit_cost: str = typer.Option(..., "--unit-cost"),
                  currency: str = typer.Option("USD", "--currency"), data_dir: Path | None = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Register a component."""
    emit(open_services(data_dir).ecosystem.supply.add_component(
        part_no=part_no, supplier_id=supplier, name=name, kind=kind, unit_cost=unit_cost, currency=currency),
        as_json=as_json)


@component_app.command("list")
@handle_errors
def component_list(supplier: str | None = typer.Option(None, "--supplier"),
                   kind: str | None = typer.Option(None, "--kind"), data_dir: Path | None = DataDir,
                   as_json: bool = JsonOut) -> None:
    """Components."""
    emit(open_services(data_dir).ecosystem.supply.components(supplier_id=supplier, kind=kind), as_json=as_json)


@bom_app.command("set")
@handle_errors
def bom_set(model: str, lines: list[str] = typer.Argument(..., help="PART_NO[:QTY] ..."),
            data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Replace a product's BOM."""
    parsed = []
    for line in lines:
        part, _, qty = line.partition(":")
        if qty and not qty.isdigit():
            raise InvalidInput(f"{line!r}: quantity must be a positive integer", code=ErrorCode.INVALID_QUANTITY)
        parsed.append({"part_no": part, "quantity": int(qty or 1)})
    emit(open_services(data_dir).ecosystem.supply.set_bom(model, parsed), as_json=as_json,
         columns=["part_no", "name", "supplier_id", "quantity", "unit_cost", "currency"])


@bom_app.command("show")
@handle_errors
def bom_show(model: str, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """A product's BOM."""
    emit(open_services(data_dir).ecosystem.supply.bom(model), as_json=as_json,
         columns=["part_no", "name", "supplier_id", "quantity", "unit_cost", "currency"])


@handle_errors
def demand(stage: list[str] = typer.Option(["launched"], "--stage"), limit: int = typer.Option(50, "--limit"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Annual demand per component across all partners' products (one order for the whole ecosystem)."""
    emit(open_services(data_dir).ecosystem.supply.demand(stages=stage, limit=limit), as_json=as_json,
         columns=["part_no", "name", "supplier_id", "annual_units", "partners", "products", "spend", "currency"])
