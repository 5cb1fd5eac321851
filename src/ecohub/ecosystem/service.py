"""Use cases of the ecosystem context: products, their specs and lifecycle (the only entry point for others)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role, check_partner, partner_filter
from ecohub.bus import EventBus
from ecohub.ecosystem.definition import check_readiness, missing_of
from ecohub.ecosystem.domain import (
    ORDER,
    PROVISIONABLE,
    Availability,
    Stage,
    TransitionContext,
    check_currency,
    check_model_id,
    check_transition,
    money,
    path_to,
)
from ecohub.ecosystem.events import ProductSpecChanged, ProductStageChanged
from ecohub.ecosystem.models import Category, Listing, Market, Product, ProductMarket, ProductTransition, SpecVersion
from ecohub.errors import Conflict, ErrorCode, InvalidInput, NotFound
from ecohub.spec import CompiledSpec, Spec, SpecInvalid, compile_spec, diff_specs, parse_spec
from ecohub.spec.diff import compatible
from ecohub.store import Databases

SPEC_CACHE_TTL_S = 5.0
# built once: constructing the statement cost as much as running it (provisioning one device runs it each time)
_PROVISIONABLE_Q = select(Product.stage, Product.partner_id).where(Product.model == bindparam("model"))
UNCATEGORISED = "uncategorised"

# (model, spec_hash) -> market codes with a valid passing certification report (supplied by the certify context).
CertificationEvidence = Callable[[str, str], frozenset[str]]
# (model, spec_hash, markets) -> per market None when it opens, else why not (the certify context's market_gate).
CertificationGate = Callable[[str, str, list[str]], dict[str, str | None]]

# stages from which devices exist in the field or in test: their spec may only grow, or start a new major version
EVOLVING = frozenset({Stage.CERTIFICATION, Stage.APPROVED, Stage.LAUNCHED})


@dataclass(frozen=True, slots=True)
class ProductView:
    """A product as services return it."""

    model: str
    partner_id: str | None
    category: str
    name: str
    stage: str
    spec_hash: str
    spec_version: int
    design_ref: str = ""
    target_price: Decimal | None = None
    price_currency: str = "USD"
    forecast_volume: int = 0
    target_markets: tuple[str, ...] = field(default=())
    definition_missing: tuple[str, ...] | None = None  # set by an import that stopped at `defined`

    def to_dict(self) -> dict[str, Any]:
        """The product as the API and `--json` render it (money as a decimal string)."""
        return {
            "model": self.model,
            "partner_id": self.partner_id,
            "category": self.category,
            "name": self.name,
            "stage": self.stage,
            "spec_hash": self.spec_hash,
            "spec_version": self.spec_version,
            "design_ref": self.design_ref,
            "target_price": None if self.target_price is None else str(self.target_price),
            "price_currency": self.price_currency,
            "forecast_volume": self.forecast_volume,
            "target_markets": list(self.target_markets),
            **({} if self.definition_missing is None else {"definition_missing": list(self.definition_missing)}),
        }


def _view(p: Product, markets: Sequence[str] = ()) -> ProductView:
    return ProductView(p.model, p.partner_id, p.category, p.name, p.stage, p.spec_hash, p.spec_version,
                       p.design_ref or "", p.target_price, p.price_currency or "USD", p.forecast_volume or 0,
                       tuple(sorted(markets)))


def _markets_of(s: Session, model: str) -> list[str]:
    return list(s.scalars(select(ProductMarket.market).where(ProductMarket.model == model)))


class ProductService:
    """Products, their spec versions and lifecycle; compiled specs for the hot path."""

    def __init__(self, dbs: Databases, bus: EventBus, certification: CertificationEvidence | None = None,
                 gate: CertificationGate | None = None) -> None:
        self.dbs = dbs
        self.bus = bus
        self._certification = certification
        self._gate = gate
        self._compiled: dict[str, tuple[float, CompiledSpec]] = {}

    def use_certification(self, evidence: CertificationEvidence | None, gate: CertificationGate | None = None) -> None:
        """Plug in the certify context's evidence: (model, spec_hash) → markets with a valid passing report (and,
        optionally, the gate that says why a market does not open)."""
        self._certification = evidence
        self._gate = gate

    def why_closed(self, model: str, spec_hash: str, markets: list[str]) -> dict[str, str]:
        """Why each of these markets does not open for this spec (markets that open are left out)."""
        if self._gate is not None:
            return {m: why for m, why in self._gate(model, spec_hash, markets).items() if why is not None}
        passed = self.passed_markets(model, spec_hash)
        return {m: f"no valid passing certification for {m}" for m in markets if m not in passed}

    def passed_markets(self, model: str, spec_hash: str) -> frozenset[str]:
        """Markets where this exact spec has a valid passing report; none without certification evidence."""
        if self._certification is None:
            return frozenset()
        return frozenset(self._certification(model, spec_hash))

    def import_spec(
        self,
        document: Any,
        *,
        model: str,
        actor: str,
        partner_id: str | None = None,
        category: str | None = None,
        stage: Stage | None = None,
        target_markets: Sequence[str] | None = None,
        design_ref: str | None = None,
        target_price: Decimal | str | int | None = None,
        price_currency: str | None = None,
        forecast_volume: int | None = None,
        caller: Principal | None = None,
        major: bool = False,
    ) -> ProductView:
        """Create or update a product from a miot-spec-v2 document; new products walk the lifecycle to `stage`.

        Without a `stage` a new product walks as far as its definition allows, up to `certification`: with the
        definition incomplete it stays at `defined` and the view names what is missing (`definition_missing`).
        An explicit `stage` the definition does not allow is refused (409 `definition_incomplete`).
        A partner caller creates products of its own (partner_id defaults to it) and may name no other partner."""
        if caller is not None and caller.role == Role.PARTNER:
            partner_id = partner_id or caller.partner_id
        check_partner(caller, partner_id)
        check_model_id(model)
        try:
            spec = parse_spec(document)
        except SpecInvalid as err:
            raise InvalidInput(
                f"the spec has {len(err.problems)} problem(s): {err}",
                code=ErrorCode.INVALID_SPEC,
                problems=[{"path": p.path, "message": p.message} for p in err.problems],
            ) from err
        events: list[Any] = []
        with self.dbs.global_session() as s:
            if category:
                self._check_category(s, category)
            product = s.get(Product, model)
            if product is None:
                product = Product(
                    model=model,
                    partner_id=partner_id,
                    category=category or UNCATEGORISED,
                    name=spec.description or model,
                    stage=Stage.CONCEPT,
                    spec=document,
                    spec_hash=spec.hash,
                    spec_version=1,
                )
                s.add(product)
                s.add(ProductTransition(model=model, from_stage=None, to_stage=Stage.CONCEPT, actor=actor,
                                        reason="created by spec import"))
                s.add(SpecVersion(model=model, version=1, spec=document, spec_hash=spec.hash))
                s.flush()
                self._define(s, product, target_markets, design_ref, target_price, price_currency, forecast_volume)
                events += self._walk_on_import(s, product, stage, actor, created=True)
            else:
                # a partner updates only its own products; one without a partner belongs to the brand
                check_partner(caller, product.partner_id)
                if partner_id and product.partner_id and partner_id != product.partner_id:
                    raise Conflict(f"product {model} belongs to partner {product.partner_id}",
                                   code=ErrorCode.WRONG_PARTNER)
                if category:
                    product.category = category
                if product.spec_hash != spec.hash:
                    events += self._evolve(s, product, spec, actor=actor, major=major)
                    product.spec_version += 1
                    product.spec = document
                    product.spec_hash = spec.hash
                    s.add(SpecVersion(model=model, version=product.spec_version, spec=document,
                                      spec_hash=spec.hash))
                    events.append(ProductSpecChanged(model, product.spec_version, spec.hash))
                self._define(s, product, target_markets, design_ref, target_price, price_currency, forecast_volume)
                events += self._walk_on_import(s, product, stage, actor, created=False)
            view = _view(product, _markets_of(s, model))
            if Stage(product.stage) in (Stage.CONCEPT, Stage.DEFINED):
                view = dataclasses.replace(view, definition_missing=tuple(missing_of(s, product)))
        self._compiled.pop(model, None)
        self.bus.publish(events)
        return view

    def _walk_on_import(self, s: Session, product: Product, stage: Stage | None, actor: str, *,
                        created: bool) -> list[Any]:
        """Move an imported product forward: to `stage` when asked (a new product must be able to get there), else as
        far as its definition allows — `certification` when complete; a new product with an incomplete one stops at
        `defined`, an existing one stays where it is."""
        s.flush()
        current = Stage(product.stage)
        goal = stage
        if goal is None and current in (Stage.CONCEPT, Stage.DEFINED):
            if not missing_of(s, product):
                goal = Stage.CERTIFICATION
            elif created:
                goal = Stage.DEFINED  # the import shortcut stops where the definition stops it
        if goal is None:
            return []
        if not created and not (current in ORDER and goal in ORDER and ORDER.index(goal) > ORDER.index(current)):
            return []  # a re-import never moves a product back (nor sideways)
        return [self._move(s, product, step, actor, "spec import") for step in path_to(current, goal)]

    def _evolve(self, s: Session, product: Product, spec: Spec, *, actor: str, major: bool) -> list[Any]:
        """MIoT's rule for a product at certification or later: a new spec version may only add. A breaking change
        is refused unless published as a new major version, which sends the product back to certification."""
        if Stage(product.stage) not in EVOLVING:
            return []
        changes = diff_specs(parse_spec(product.spec), spec)
        if compatible(changes):
            return []
        breaking = [f"{c.path}: {c.detail or c.kind}" for c in changes if c.breaking]
        if not major:
            raise Conflict(f"the new spec breaks what devices and clients of {product.model} rely on ("
                           + "; ".join(breaking[:5]) + "): only additions are allowed, or publish it as a new "
                           "major version (major=true / --major), which goes back to certification",
                           code=ErrorCode.BREAKING_SPEC_CHANGE, changes=breaking)
        if Stage(product.stage) == Stage.CERTIFICATION:
            return []
        previous = Stage(product.stage)
        product.stage = Stage.CERTIFICATION  # the state machine's only way back: a new major version
        s.add(ProductTransition(model=product.model, from_stage=previous, to_stage=Stage.CERTIFICATION, actor=actor,
                                reason="new major spec version: " + "; ".join(breaking[:3])))
        return [ProductStageChanged(product.model, previous, Stage.CERTIFICATION, actor)]

    def check_spec(self, model: str, document: Any, *, caller: Principal | None = None) -> dict[str, Any]:
        """What a new spec version would change for a product and whether it is compatible (nothing is stored)."""
        current = self.get(model, caller=caller)
        try:
            new = parse_spec(document)
        except SpecInvalid as err:
            raise InvalidInput(f"the spec has {len(err.problems)} problem(s): {err}", code=ErrorCode.INVALID_SPEC,
                               problems=[{"path": p.path, "message": p.message} for p in err.problems]) from err
        changes = diff_specs(parse_spec(self.get_spec_document(model)), new)
        needs_major = not compatible(changes) and Stage(current.stage) in EVOLVING
        return {"model": model, "spec_version": current.spec_version, "stage": str(current.stage),
                "compatible": compatible(changes), "needs_major_version": needs_major,
                "changes": [{"path": c.path, "kind": c.kind, "detail": c.detail, "breaking": c.breaking}
                            for c in changes]}

    def _move(self, s: Session, product: Product, target: Stage, actor: str, reason: str) -> Any:
        current = Stage(product.stage)
        targets: tuple[str, ...] = ()
        passed: frozenset[str] = frozenset()
        if target in (Stage.APPROVED, Stage.LAUNCHED):  # only these guards need the markets and the evidence
            targets = tuple(sorted(_markets_of(s, product.model)))
            passed = self.passed_markets(product.model, product.spec_hash)
        check_transition(current, target, TransitionContext(bool(product.spec_hash), targets, passed))
        check_readiness(s, product, target)
        product.stage = target
        s.add(ProductTransition(model=product.model, from_stage=current, to_stage=target, actor=actor, reason=reason))
        if target == Stage.DISCONTINUED:
            s.execute(update(Listing).where(Listing.model == product.model)
                      .values(availability=Availability.DISCONTINUED))
        return ProductStageChanged(product.model, current, target, actor)

    def transition(self, model: str, target: str, *, actor: str, reason: str = "") -> ProductView:
        """Move a product to `target` if the state machine and its guards allow it (recorded with who and when)."""
        try:
            stage = Stage(target)
        except ValueError as err:
            raise InvalidInput(f"unknown lifecycle stage {target!r}; stages: {', '.join(Stage)}",
                               code=ErrorCode.INVALID_STAGE) from err
        with self.dbs.global_session() as s:
            product = self._get(s, model)
            event = self._move(s, product, stage, actor, reason)
            view = _view(product, _markets_of(s, model))
        self.bus.publish([event])
        return view

    def _get(self, s: Session, model: str) -> Product:
        product = s.get(Product, model)
        if product is None:
            raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
        return product

    def get(self, model: str, *, caller: Principal | None = None) -> ProductView:
        """One product (a partner caller: only its own)."""
        with self.dbs.global_session() as s:
            view = _view(self._get(s, model), _markets_of(s, model))
        check_partner(caller, view.partner_id)
        return view

    def check_access(self, caller: Principal | None, model: str | None) -> None:
        """Refuse a partner caller a product that is not its own (an unknown product counts as not its own)."""
        if caller is None or caller.role != Role.PARTNER:
            return
        try:
            self.get(str(model), caller=caller)
        except NotFound:
            check_partner(caller, None)

    def define(self, model: str, *, actor: str, category: str | None = None,
               target_markets: Sequence[str] | None = None, design_ref: str | None = None,
               target_price: Decimal | str | int | None = None, price_currency: str | None = None,
               forecast_volume: int | None = None) -> ProductView:
        """Set the brand's definition of a product: category, markets, target price, forecast (the ID design is
        recorded by the design service; `design_ref` is read-only)."""
        with self.dbs.global_session() as s:
            product = self._get(s, model)
            if category:
                product.category = self._check_category(s, category)
            self._define(s, product, target_markets, design_ref, target_price, price_currency, forecast_volume)
            s.add(ProductTransition(model=model, from_stage=product.stage, to_stage=product.stage, actor=actor,
                                    reason="definition changed"))
            return _view(product, _markets_of(s, model))

    @staticmethod
    def _check_category(s: Session, slug: str) -> str:
        if s.get(Category, slug) is None:
            raise InvalidInput(f"unknown category {slug!r}; see `ecohub category list`",
                               code=ErrorCode.UNKNOWN_CATEGORY)
        return slug

    @staticmethod
    def _define(s: Session, product: Product, markets: Sequence[str] | None, design_ref: str | None,
                target_price: Decimal | str | int | None, price_currency: str | None,
                forecast_volume: int | None) -> None:
        if design_ref is not None and design_ref != (product.design_ref or ""):
            raise InvalidInput("design_ref is read-only: it names the current industrial-design version; upload "
                               f"design files at /api/v1/products/{product.model}/designs (`ecohub design upload`)",
                               code=ErrorCode.READ_ONLY_FIELD)
        if price_currency is not None:
            product.price_currency = check_currency(price_currency)
        if target_price is not None:
            product.target_price = money(target_price, field="target_price", currency=product.price_currency or "USD",
                                         positive=True)
        if forecast_volume is not None:
            if forecast_volume < 0:
                raise InvalidInput(f"forecast volume cannot be negative, got {forecast_volume}",
                                   code=ErrorCode.INVALID_VOLUME)
            product.forecast_volume = forecast_volume
        if markets is not None:
            codes = sorted({m.upper() for m in markets})
            known = set(s.scalars(select(Market.code).where(Market.code.in_(codes)))) if codes else set()
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise InvalidInput(f"unknown market(s): {', '.join(unknown)}", code=ErrorCode.UNKNOWN_MARKET)
            s.execute(delete(ProductMarket).where(ProductMarket.model == product.model))
            s.add_all(ProductMarket(model=product.model, market=c) for c in codes)

    def get_spec_document(self, model: str) -> dict[str, Any]:
        """The current spec document of a product, unchanged."""
        with self.dbs.global_session() as s:
            return dict(self._get(s, model).spec)

    def history(self, model: str, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Every lifecycle transition of a product, oldest first."""
        self.check_access(caller, model)
        with self.dbs.global_session() as s:
            self._get(s, model)
            rows = s.scalars(select(ProductTransition).where(ProductTransition.model == model)
                             .order_by(ProductTransition.id)).all()
            return [{"from": r.from_stage, "to": r.to_stage, "actor": r.actor, "reason": r.reason,
                     "at": r.at.isoformat()} for r in rows]

    def list(self, *, partner_id: str | None = None, stage: str | None = None, category: str | None = None,
             limit: int = 1000, offset: int = 0, caller: Principal | None = None) -> list[ProductView]:
        """Products, optionally of one partner, stage or category (a partner caller: its own)."""
        partner_id = partner_filter(caller, partner_id)
        q = select(Product).order_by(Product.model).limit(limit).offset(offset)
        if partner_id:
            q = q.where(Product.partner_id == partner_id)
        if stage:
            q = q.where(Product.stage == stage)
        if category:
            q = q.where(Product.category == category)
        with self.dbs.global_session() as s:
            products = list(s.scalars(q))
            markets: dict[str, list[str]] = {}
            models = [p.model for p in products]
            for chunk in (models[i:i + 500] for i in range(0, len(models), 500)):
                for m, c in s.execute(select(ProductMarket.model, ProductMarket.market)
                                      .where(ProductMarket.model.in_(chunk))):
                    markets.setdefault(m, []).append(c)
            return [_view(p, markets.get(p.model, ())) for p in products]

    def count(self, *, partner_id: str | None = None, stage: str | None = None, category: str | None = None,
              caller: Principal | None = None) -> int:
        """How many products `list` with the same filters would return in all (a list's "of N")."""
        partner_id = partner_filter(caller, partner_id)
        q = select(func.count()).select_from(Product)
        if partner_id:
            q = q.where(Product.partner_id == partner_id)
        if stage:
            q = q.where(Product.stage == stage)
        if category:
            q = q.where(Product.category == category)
        with self.dbs.global_session() as s:
            return int(s.scalar(q) or 0)

    def compiled(self, model: str) -> CompiledSpec:
        """The compiled spec of a product, cached; other processes' spec changes are seen within a few seconds."""
        hit = self._compiled.get(model)
        now = time.monotonic()
        if hit is not None and now - hit[0] < SPEC_CACHE_TTL_S:
            return hit[1]
        with self.dbs.global_session() as s:
            product = self._get(s, model)
            if hit is not None and hit[1].hash == product.spec_hash:
                compiled = hit[1]
            else:
                compiled = compile_spec(parse_spec(product.spec))
        self._compiled[model] = (now, compiled)
        return compiled

    def check_provisionable(self, model: str, *, caller: Principal | None = None) -> str | None:
        """Devices exist only from certification on (test units) — refuse earlier stages with the reason (a partner
        caller: only its own products); → the product's partner id. Reads two columns, not the product: its spec
        document is parsed on every load, which was half the cost of provisioning one device."""
        with self.dbs.global_session() as s:
            row = s.execute(_PROVISIONABLE_Q, {"model": model}).first()
            if row is None:
                raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
            check_partner(caller, row.partner_id)
            hint = ""
            if Stage(row.stage) in (Stage.CONCEPT, Stage.DEFINED):
                missing = missing_of(s, self._get(s, model))
                if missing:
                    hint = (f"; its definition lacks {', '.join(missing)} (ecohub product define {model} …, "
                            f"then move it on)")
        if Stage(row.stage) not in PROVISIONABLE:
            raise Conflict(
                f"product {model} is at stage {row.stage}; devices can be provisioned only from "
                f"certification on (test units) or later{hint}",
                code=ErrorCode.NOT_PROVISIONABLE,
            )
        return row.partner_id
