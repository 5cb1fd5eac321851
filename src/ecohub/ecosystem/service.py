"""Use cases of the ecosystem context: products, their specs and lifecycle (the only entry point for others)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.bus import EventBus
from ecohub.ecosystem.domain import (
    PROVISIONABLE,
    Stage,
    TransitionContext,
    check_model_id,
    check_transition,
    path_to,
)
from ecohub.ecosystem.events import ProductSpecChanged, ProductStageChanged
from ecohub.ecosystem.models import Product, ProductTransition, SpecVersion
from ecohub.errors import Conflict, InvalidInput, NotFound
from ecohub.spec import CompiledSpec, SpecInvalid, compile_spec, parse_spec
from ecohub.store import Databases

SPEC_CACHE_TTL_S = 5.0


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "partner_id": self.partner_id,
            "category": self.category,
            "name": self.name,
            "stage": self.stage,
            "spec_hash": self.spec_hash,
            "spec_version": self.spec_version,
        }


def _view(p: Product) -> ProductView:
    return ProductView(p.model, p.partner_id, p.category, p.name, p.stage, p.spec_hash, p.spec_version)


class ProductService:
    """Products, their spec versions and lifecycle; compiled specs for the hot path."""

    def __init__(self, dbs: Databases, bus: EventBus) -> None:
        self.dbs = dbs
        self.bus = bus
        self._compiled: dict[str, tuple[float, CompiledSpec]] = {}

    def import_spec(
        self,
        document: Any,
        *,
        model: str,
        actor: str,
        partner_id: str | None = None,
        category: str | None = None,
        stage: Stage = Stage.CERTIFICATION,
    ) -> ProductView:
        """Create or update a product from a miot-spec-v2 document; new products walk the lifecycle to `stage`."""
        check_model_id(model)
        try:
            spec = parse_spec(document)
        except SpecInvalid as err:
            raise InvalidInput(
                f"the spec has {len(err.problems)} problem(s): {err}",
                code="invalid_spec",
                problems=[{"path": p.path, "message": p.message} for p in err.problems],
            ) from err
        events: list[Any] = []
        with self.dbs.global_session() as s:
            product = s.get(Product, model)
            if product is None:
                product = Product(
                    model=model,
                    partner_id=partner_id,
                    category=category or "uncategorised",
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
                for step in path_to(Stage.CONCEPT, stage):
                    events.append(self._move(s, product, step, actor, "spec import"))
            else:
                if partner_id and product.partner_id and partner_id != product.partner_id:
                    raise Conflict(f"product {model} belongs to partner {product.partner_id}", code="wrong_partner")
                if category:
                    product.category = category
                if product.spec_hash != spec.hash:
                    product.spec_version += 1
                    product.spec = document
                    product.spec_hash = spec.hash
                    s.add(SpecVersion(model=model, version=product.spec_version, spec=document,
                                      spec_hash=spec.hash))
                    events.append(ProductSpecChanged(model, product.spec_version, spec.hash))
            view = _view(product)
        self._compiled.pop(model, None)
        self.bus.publish(events)
        return view

    def _move(self, s: Session, product: Product, target: Stage, actor: str, reason: str,
              passed_markets: frozenset[str] = frozenset(), target_markets: tuple[str, ...] = ()) -> Any:
        current = Stage(product.stage)
        check_transition(current, target, TransitionContext(True, target_markets, passed_markets))
        product.stage = target
        s.add(ProductTransition(model=product.model, from_stage=current, to_stage=target, actor=actor, reason=reason))
        return ProductStageChanged(product.model, current, target, actor)

    def transition(self, model: str, target: str, *, actor: str, reason: str = "",
                   target_markets: tuple[str, ...] = (), passed_markets: frozenset[str] = frozenset()) -> ProductView:
        """Move a product to `target` if the state machine and its guards allow it."""
        try:
            stage = Stage(target)
        except ValueError as err:
            raise InvalidInput(f"unknown lifecycle stage {target!r}; stages: {', '.join(Stage)}",
                               code="invalid_stage") from err
        with self.dbs.global_session() as s:
            product = self._get(s, model)
            event = self._move(s, product, stage, actor, reason, passed_markets, target_markets)
            view = _view(product)
        self.bus.publish([event])
        return view

    def _get(self, s: Session, model: str) -> Product:
        product = s.get(Product, model)
        if product is None:
            raise NotFound(f"no product with model {model!r}", code="unknown_model")
        return product

    def get(self, model: str) -> ProductView:
        """One product."""
        with self.dbs.global_session() as s:
            return _view(self._get(s, model))

    def get_spec_document(self, model: str) -> dict[str, Any]:
        """The current spec document of a product, unchanged."""
        with self.dbs.global_session() as s:
            return dict(self._get(s, model).spec)

    def history(self, model: str) -> list[dict[str, Any]]:
        """Every lifecycle transition of a product, oldest first."""
        with self.dbs.global_session() as s:
            self._get(s, model)
            rows = s.scalars(select(ProductTransition).where(ProductTransition.model == model)
                             .order_by(ProductTransition.id)).all()
            return [{"from": r.from_stage, "to": r.to_stage, "actor": r.actor, "reason": r.reason,
                     "at": r.at.isoformat()} for r in rows]

    def list(self, *, partner_id: str | None = None, stage: str | None = None, limit: int = 1000) -> list[ProductView]:
        """Products, optionally of one partner or stage."""
        q = select(Product).order_by(Product.model).limit(limit)
        if partner_id:
            q = q.where(Product.partner_id == partner_id)
        if stage:
            q = q.where(Product.stage == stage)
        with self.dbs.global_session() as s:
            return [_view(p) for p in s.scalars(q)]

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

    def check_provisionable(self, model: str) -> ProductView:
        """Devices exist only from certification on (test units) — refuse earlier stages with the reason."""
        product = self.get(model)
        if Stage(product.stage) not in PROVISIONABLE:
            raise Conflict(
                f"product {model} is at stage {product.stage}; devices can be provisioned only from "
                "certification on (test units) or later",
                code="not_provisionable",
            )
        return product
