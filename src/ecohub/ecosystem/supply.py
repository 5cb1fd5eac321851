"""Use cases of the supply chain: suppliers, components, BOMs, ecosystem-wide demand and supplier dependency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, distinct, func, or_, select

from ecohub.auth import Principal, check_partner
from ecohub.ecosystem.channel import get_market
from ecohub.ecosystem.domain import Stage, check_currency, check_slug, money, slugify
from ecohub.ecosystem.models import BomLine, Component, Product, Supplier
from ecohub.errors import Conflict, ErrorCode, InvalidInput, NotFound
from ecohub.store import Databases

DEMAND_STAGES = (Stage.LAUNCHED,)


def supplier_dict(x: Supplier) -> dict[str, Any]:
    """A supplier as services return it."""
    return {"id": x.id, "name": x.name, "country": x.country, "kind": x.kind}


def component_dict(c: Component) -> dict[str, Any]:
    """A component as services return it (unit cost as a decimal string)."""
    return {"part_no": c.part_no, "supplier_id": c.supplier_id, "name": c.name, "kind": c.kind,
            "unit_cost": str(c.unit_cost), "currency": c.currency}


class SupplyService:
    """Suppliers, components and BOM lines; aggregated demand so the brand can place one order for everyone."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs

    def add_supplier(self, *, name: str, country: str, kind: str, supplier_id: str | None = None) -> dict[str, Any]:
        """Register a supplier."""
        if not name.strip() or not kind.strip():
            raise InvalidInput("a supplier needs a name and a kind (e.g. mcu, wifi-module, battery)",
                               code=ErrorCode.INVALID_SUPPLIER)
        sid = check_slug(supplier_id or slugify(name), what="supplier")
        with self.dbs.global_session() as s:
            get_market(s, country)
            if s.get(Supplier, sid) is not None or s.scalar(select(Supplier.id).where(Supplier.name == name)):
                raise Conflict(f"a supplier {sid!r} / {name!r} already exists", code=ErrorCode.SUPPLIER_EXISTS)
            row = Supplier(id=sid, name=name.strip(), country=country.upper(), kind=kind.strip().lower())
            s.add(row)
            return supplier_dict(row)

    def suppliers(self, *, kind: str | None = None) -> list[dict[str, Any]]:
        """Suppliers, optionally of one kind."""
        q = select(Supplier).order_by(Supplier.id)
        if kind:
            q = q.where(Supplier.kind == kind)
        with self.dbs.global_session() as s:
            return [supplier_dict(x) for x in s.scalars(q)]

    def add_component(self, *, part_no: str, supplier_id: str, name: str, kind: str, unit_cost: Decimal | str | int,
                      currency: str = "USD") -> dict[str, Any]:
        """Register a component a supplier sells."""
        if not part_no.strip() or len(part_no) > 64:
            raise InvalidInput("a component needs a part number (up to 64 characters)", code=ErrorCode.INVALID_PART_NO)
        cur = check_currency(currency)
        cost = money(unit_cost, field="unit_cost", currency=cur, positive=True, places=4)
        with self.dbs.global_session() as s:
            if s.get(Supplier, supplier_id) is None:
                raise NotFound(f"no supplier {supplier_id!r}", code=ErrorCode.UNKNOWN_SUPPLIER)
            if s.get(Component, part_no) is not None:
                raise Conflict(f"component {part_no} already exists", code=ErrorCode.COMPONENT_EXISTS)
            row = Component(part_no=part_no, supplier_id=supplier_id, name=name, kind=kind.lower(), unit_cost=cost,
                            currency=cur)
            s.add(row)
            return component_dict(row)

    def components(self, *, supplier_id: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Components, optionally of one supplier or kind."""
        q = select(Component).order_by(Component.part_no)
        if supplier_id:
            q = q.where(Component.supplier_id == supplier_id)
        if kind:
            q = q.where(Component.kind == kind)
        with self.dbs.global_session() as s:
            return [component_dict(c) for c in s.scalars(q)]

    def set_bom(self, model: str, lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Replace a product's BOM in one transaction: [{"part_no", "quantity"}]."""
        wanted: dict[str, int] = {}
        for line in lines:
            part, qty = str(line.get("part_no", "")), line.get("quantity", 1)
            if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                raise InvalidInput(f"quantity of {part} must be a positive integer, got {qty!r}",
                                   code=ErrorCode.INVALID_QUANTITY)
            wanted[part] = wanted.get(part, 0) + qty
        with self.dbs.global_session() as s:
            if s.get(Product, model) is None:
                raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
            known = set(s.scalars(select(Component.part_no).where(Component.part_no.in_(list(wanted)))))
            unknown = sorted(set(wanted) - known)
            if unknown:
                raise InvalidInput(f"unknown component(s): {', '.join(unknown)}", code=ErrorCode.UNKNOWN_COMPONENT)
            s.execute(delete(BomLine).where(BomLine.model == model))
            s.add_all(BomLine(model=model, part_no=p, quantity=q) for p, q in wanted.items())
        return self.bom(model)

    def bom(self, model: str, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """A product's BOM lines with component and supplier (a partner caller: its own products)."""
        q = (select(BomLine.quantity, Component).join(Component, Component.part_no == BomLine.part_no)
             .where(BomLine.model == model).order_by(Component.part_no))
        with self.dbs.global_session() as s:
            product = s.get(Product, model)
            if product is None:
                raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
            check_partner(caller, product.partner_id)
            return [{**component_dict(c), "quantity": qty} for qty, c in s.execute(q)]

    def demand(self, *, stages: Sequence[str] = DEMAND_STAGES, limit: int = 100,
               after: tuple[int, str] | None = None) -> list[dict[str, Any]]:
        """Annual units per component over all partners' products at `stages`: sum(quantity * forecast volume),
        most units first (ties by part number); `after` (units, part_no) starts behind that row."""
        # no forecast counts as 0 units, last in both engines (PostgreSQL would sort NULL first)
        units = func.coalesce(func.sum(BomLine.quantity * Product.forecast_volume), 0)
        q = (select(Component.part_no, Component.name, Component.kind, Component.supplier_id, Component.unit_cost,
                    Component.currency, units.label("units"), func.count(distinct(Product.partner_id)),
                    func.count(distinct(Product.model)))
             .join(BomLine, BomLine.part_no == Component.part_no).join(Product, Product.model == BomLine.model)
             .where(Product.stage.in_(list(stages)))
             .group_by(Component.part_no, Component.name, Component.kind, Component.supplier_id,
                       Component.unit_cost, Component.currency)
             .order_by(units.desc(), Component.part_no).limit(limit))
        if after is not None:
            done_units, done_part = after
            q = q.having(or_(units < done_units, and_(units == done_units, Component.part_no > done_part)))
        with self.dbs.global_session() as s:
            return [{"part_no": p, "name": n, "kind": k, "supplier_id": sup, "annual_units": int(u or 0),
                     "partners": np, "products": nm, "currency": cur,
                     "spend": str((Decimal(cost) * int(u or 0)).quantize(Decimal("0.01")))}
                    for p, n, k, sup, cost, cur, u, np, nm in s.execute(q)]

    def dependency(self, *, min_partners: int = 1, stages: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Suppliers ranked by how many partners depend on them (through their products' BOMs)."""
        q = (select(Supplier.id, Supplier.name, Supplier.kind, func.count(distinct(Product.partner_id)),
                    func.count(distinct(Product.model)), func.count(distinct(Component.part_no)))
             .join(Component, Component.supplier_id == Supplier.id).join(BomLine, BomLine.part_no == Component.part_no)
             .join(Product, Product.model == BomLine.model)
             .group_by(Supplier.id, Supplier.name, Supplier.kind))
        if stages:
            q = q.where(Product.stage.in_(list(stages)))
        with self.dbs.global_session() as s:
            partners_total = s.scalar(select(func.count(distinct(Product.partner_id)))
                                      .where(Product.partner_id.is_not(None))) or 0
            rows: list[dict[str, Any]] = [
                {"supplier_id": sid, "name": n, "kind": k, "partners": np, "products": nm, "components": nc,
                 "partner_share_percent": round(100 * np / partners_total, 1) if partners_total else 0.0}
                    for sid, n, k, np, nm, nc in s.execute(q) if np >= min_partners]
        rows.sort(key=lambda r: (-r["partners"], -r["products"], r["supplier_id"]))
        return rows
