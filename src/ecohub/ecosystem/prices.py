"""Use cases of the pricing policy: the brand's settings per product and market, BOM cost, the listing price check
(refused with the rule it breaks, or accepted with an audited override) and margin per market for the KPIs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role, check_partner
from ecohub.ecosystem.design import Audit
from ecohub.ecosystem.domain import Availability, money
from ecohub.ecosystem.models import BomLine, Component, Listing, Market, PricingPolicy, Product
from ecohub.ecosystem.pricing import (
    DEFAULT_POLICY,
    SETTINGS,
    Policy,
    Verdict,
    check_policy,
    convert,
    evaluate,
    merge,
    minor,
)
from ecohub.errors import ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.store import Databases

ALL = "*"


@dataclass(frozen=True, slots=True)
class _Priced:
    """The columns of a product the price check needs (the KPI view reads no spec documents)."""

    model: str
    target_price: Decimal | None
    price_currency: str


def _overrides(row: PricingPolicy) -> dict[str, Decimal | None]:
    return {k: getattr(row, k) for k in SETTINGS}


class PricingService:
    """The brand's pricing policy over products and markets (global plane, no personal data)."""

    def __init__(self, dbs: Databases, *, audit: Audit | None = None) -> None:
        self.dbs = dbs
        self.audit = audit

    # --- settings -------------------------------------------------------------------------------------------------

    @staticmethod
    def _policy(s: Session, model: str, market: str) -> Policy:
        """product+market → product+* → *+market → *+* → built-in defaults (each level sets what it names)."""
        rows = {(r.model, r.market): r for r in s.scalars(select(PricingPolicy).where(
            PricingPolicy.model.in_([model, ALL]), PricingPolicy.market.in_([market, ALL])))}
        policy = DEFAULT_POLICY
        for key in ((ALL, ALL), (ALL, market), (model, ALL), (model, market)):
            if key in rows:
                policy = merge(policy, _overrides(rows[key]))
        return policy

    def policy(self, model: str = ALL, market: str = ALL) -> dict[str, Any]:
        """The effective settings for a product (or `*`) in a market (or `*`)."""
        with self.dbs.global_session() as s:
            return {"model": model, "market": market, **self._policy(s, model, market.upper()).to_dict()}

    def set_policy(self, model: str = ALL, market: str = ALL, *, actor: str, caller: Principal | None = None,
                   **settings: Decimal | str | None) -> dict[str, Any]:
        """Set (or clear with "") settings for a product or all (`*`) in a market or all (`*`); the brand only."""
        if caller is not None and caller.role != Role.OPERATOR:
            raise Forbidden("only the brand (an operator) sets the pricing policy", code=ErrorCode.WRONG_ROLE)
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise InvalidInput(f"unknown pricing setting(s): {', '.join(unknown)}", code=ErrorCode.INVALID_POLICY)
        market = market.upper()
        with self.dbs.global_session() as s:
            if model != ALL and s.get(Product, model) is None:
                raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
            if market != ALL and s.get(Market, market) is None:
                raise InvalidInput(f"unknown market {market!r}", code=ErrorCode.UNKNOWN_MARKET)
            row = s.get(PricingPolicy, (model, market)) or PricingPolicy(model=model, market=market, actor=actor)
            for key, value in settings.items():
                if value is None:
                    continue
                setattr(row, key, None if value == "" else _fraction(key, value))
            row.actor = actor
            s.add(row)
            s.flush()
            check_policy(self._policy(s, model, market))  # the effective result must make sense
            return {"model": model, "market": market, "set": {k: None if getattr(row, k) is None
                                                               else str(getattr(row, k)) for k in SETTINGS},
                    "effective": self._policy(s, model, market).to_dict()}

    # --- costs and verdicts ---------------------------------------------------------------------------------------

    @staticmethod
    def _bom_costs(s: Session, models: list[str] | None, currency_of: dict[str, str]) -> dict[str, Decimal]:
        """BOM cost per product in the product's own currency: sum of quantity x unit cost (converted)."""
        q = select(BomLine.model, BomLine.quantity, Component.unit_cost, Component.currency).join(
            Component, Component.part_no == BomLine.part_no)
        if models is not None:
            q = q.where(BomLine.model.in_(models))
        costs: dict[str, Decimal] = defaultdict(Decimal)
        for model, qty, unit, cur in s.execute(q):
            costs[model] += convert(Decimal(unit) * qty, cur, currency_of.get(model, "USD"))
        return dict(costs)

    def _verdict(self, s: Session, product: Product | _Priced, market: str, currency: str, price: Decimal,
                 bom: Decimal | None, policy: Policy | None = None) -> Verdict:
        if bom is None:
            raise InvalidInput(f"{product.model} has no BOM: its cost, and so its margin, is unknown; record the BOM "
                               "(`ecohub bom set`) before listing it", code=ErrorCode.NO_BOM)
        if product.target_price is None:
            raise InvalidInput(f"{product.model} has no target price; define it first",
                               code=ErrorCode.DEFINITION_INCOMPLETE, missing=["target_price"])
        policy = policy or self._policy(s, product.model, market)
        own = product.price_currency or "USD"
        cost = convert(bom + policy.other_cost_fixed, own, currency)
        return evaluate(price, currency=currency, target=convert(Decimal(product.target_price), own, currency),
                        cost=cost, policy=policy)

    def quote(self, model: str, market: str, price: Decimal | str | None = None, *,
              caller: Principal | None = None) -> dict[str, Any]:
        """BOM cost, the allowed price range and (given a price) its margin and verdict for a product in a market."""
        with self.dbs.global_session() as s:
            product, m = self._product(s, model, caller), self._market(s, market)
            bom = self._bom_costs(s, [model], {model: product.price_currency}).get(model)
            if price is not None:
                amount = money(price, field="price", currency=m.currency, positive=True)
            else:  # at the target price, converted
                amount = convert(Decimal(product.target_price or 1), product.price_currency, m.currency).quantize(
                    minor(m.currency))
            verdict = self._verdict(s, product, m.code, m.currency, amount, bom)
            return {"model": model, "market": m.code, "bom_cost": str(bom), "bom_currency": product.price_currency,
                    "policy": self._policy(s, model, m.code).to_dict(), **verdict.to_dict()}

    def admit(self, s: Session, *, model: str, market: str, currency: str, price: Decimal, actor: str,
              override: str | None = None) -> None:
        """The listing check (inside the listing's transaction): refuse a price outside the policy (422 naming the
        rule and the allowed range) unless the brand overrides it with a reason, which is audited."""
        product = s.get(Product, model)
        if product is None:
            raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
        bom = self._bom_costs(s, [model], {model: product.price_currency}).get(model)
        reason = (override or "").strip()
        try:
            verdict = self._verdict(s, product, market, currency, price, bom)
        except InvalidInput as err:
            if not reason:
                raise
            self._record_override(actor, model, market, price, currency, reason, [str(err.code)])
            return
        if verdict.ok:
            return
        if not reason:
            first = verdict.violations[0]
            raise InvalidInput(
                f"{price} {currency} for {model} in {market} breaks the pricing policy ({first.rule}): "
                f"{first.message}; allowed {verdict.allowed_min} to {verdict.allowed_max} {currency}, or list it with "
                "an override reason", code=ErrorCode.PRICE_OUTSIDE_POLICY, rule=first.rule,
                **{k: v for k, v in verdict.to_dict().items() if k in ("allowed_min", "allowed_max", "margin",
                                                                        "violations", "currency")})
        self._record_override(actor, model, market, price, currency, reason, [v.rule for v in verdict.violations])

    def _record_override(self, actor: str, model: str, market: str, price: Decimal, currency: str, reason: str,
                         rules: list[str]) -> None:
        if self.audit is None:
            raise Forbidden("a pricing override needs the audit log; none is wired", code=ErrorCode.FORBIDDEN)
        self.audit(actor=actor, action="pricing.override", subject=f"{model}@{market}",
                   detail={"price": str(price), "currency": currency, "rules": rules, "reason": reason[:500]})

    # --- reports --------------------------------------------------------------------------------------------------

    def report(self, model: str, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Per market the product is listed in: price, net margin, allowed range and whether it keeps the policy."""
        with self.dbs.global_session() as s:
            product = self._product(s, model, caller)
            bom = self._bom_costs(s, [model], {model: product.price_currency}).get(model)
            rows = []
            for x in s.scalars(select(Listing).where(Listing.model == model).order_by(Listing.market)):
                row: dict[str, Any] = {"market": x.market, "listing_id": x.id, "availability": x.availability}
                try:
                    row |= self._verdict(s, product, x.market, x.currency, Decimal(x.price), bom).to_dict()
                except InvalidInput as err:
                    row |= {"price": str(x.price), "currency": x.currency, "margin": None, "within_policy": False,
                            "violations": [{"rule": str(err.code), "message": err.message}]}
                rows.append(row)
            return rows

    def by_market(self) -> dict[str, Any]:
        """Margin and price per market over every listing on sale (not discontinued): the KPI view."""
        on_sale = Listing.availability != Availability.DISCONTINUED
        with self.dbs.global_session() as s:
            products = {row.model: _Priced(row.model, row.target_price, row.price_currency) for row in s.execute(
                select(Product.model, Product.target_price, Product.price_currency).where(
                    Product.model.in_(select(Listing.model).where(on_sale))))}  # not the spec documents
            costs = self._bom_costs(s, None, {m: p.price_currency for m, p in products.items()})
            rows = {(r.model, r.market): _overrides(r) for r in s.scalars(select(PricingPolicy))}
            policies: dict[tuple[str, str], Policy] = {}
            listings = s.execute(select(Listing.model, Listing.market, Listing.currency, Listing.price).where(on_sale))
            markets: dict[str, dict[str, Any]] = {}
            for model, market, currency, price in listings:
                product = products.get(model)
                agg = markets.setdefault(market, {"currency": currency, "listings": 0, "prices_usd": [],
                                                  "margins": [], "outside_policy": 0, "unknown_cost": 0})
                agg["listings"] += 1
                agg["prices_usd"].append(convert(Decimal(price), currency, "USD"))
                if product is None or model not in costs or product.target_price is None:
                    agg["unknown_cost"] += 1
                    continue
                policy = policies.get((model, market))
                if policy is None:
                    policy = DEFAULT_POLICY
                    for key in ((ALL, ALL), (ALL, market), (model, ALL), (model, market)):
                        if key in rows:
                            policy = merge(policy, rows[key])
                    policies[(model, market)] = policy
                verdict = self._verdict(s, product, market, currency, Decimal(price), costs[model], policy)
                agg["margins"].append(verdict.margin)
                agg["outside_policy"] += 0 if verdict.ok else 1
        out = {}
        for code in sorted(markets):
            a = markets[code]
            margins, prices = a.pop("margins"), a.pop("prices_usd")
            out[code] = {**a, "avg_price_usd": str(_avg(prices).quantize(Decimal("0.01"))),
                         "avg_margin": str(_avg(margins).quantize(Decimal("0.0001"))) if margins else None,
                         "min_margin": str(min(margins).quantize(Decimal("0.0001"))) if margins else None,
                         "max_margin": str(max(margins).quantize(Decimal("0.0001"))) if margins else None}
        return out

    # --- helpers --------------------------------------------------------------------------------------------------

    @staticmethod
    def _product(s: Session, model: str, caller: Principal | None) -> Product:
        product = s.get(Product, model)
        if product is None:
            if caller is not None and caller.role == Role.PARTNER:
                check_partner(caller, None)
            raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
        check_partner(caller, product.partner_id)
        return product

    @staticmethod
    def _market(s: Session, code: str) -> Market:
        m = s.get(Market, (code or "").upper())
        if m is None:
            raise InvalidInput(f"unknown market {code!r}", code=ErrorCode.UNKNOWN_MARKET)
        return m


def _fraction(key: str, value: Decimal | str) -> Decimal:
    if isinstance(value, float):
        raise InvalidInput(f"{key}: send a decimal string, not a float", code=ErrorCode.INVALID_POLICY)
    try:
        out = Decimal(str(value))
    except ArithmeticError as err:
        raise InvalidInput(f"{key}: {value!r} is not a number", code=ErrorCode.INVALID_POLICY) from err
    if not out.is_finite():
        raise InvalidInput(f"{key}: {value!r} is not a number", code=ErrorCode.INVALID_POLICY)
    return out


def _avg(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values) if values else Decimal(0)

