"""Use cases of markets and the channel: the ~90 markets (data from migration 0002) and listings behind the gate."""

from __future__ import annotations

import builtins
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecohub.auth import Principal, check_partner, partner_filter
from ecohub.bus import EventBus
from ecohub.ecosystem.domain import CURRENCY_MINOR_UNITS, LISTABLE, OFF_SALE, Availability, Stage, money
from ecohub.ecosystem.events import ListingChanged, ProductSpecChanged
from ecohub.ecosystem.models import Listing, Market, Product
from ecohub.ecosystem.prices import PricingService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import Conflict, ErrorCode, InvalidInput, NotFound
from ecohub.store import Databases


def market_dict(m: Market) -> dict[str, Any]:
    """A market as services return it."""
    return {"code": m.code, "alpha3": m.alpha3, "numeric": m.numeric, "name": m.name, "currency": m.currency,
            "language": m.language, "region": m.region, "cell": m.cell, "cert_profile": list(m.cert_profile)}


def listing_dict(x: Listing) -> dict[str, Any]:
    """A listing as services return it (price as a decimal string in the market's currency)."""
    places = CURRENCY_MINOR_UNITS.get(x.currency, 2)
    price = str(Decimal(x.price).quantize(Decimal(1).scaleb(-places)))
    return {"id": x.id, "model": x.model, "market": x.market, "sku": x.sku, "price": price,
            "currency": x.currency, "availability": x.availability, "reason": x.reason,
            "updated_at": x.updated_at.isoformat()}


class MarketService:
    """The markets the brand sells in: currency, language, serving cell and certification profile."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs

    def list(self, *, cell: str | None = None, region: str | None = None) -> builtins.list[dict[str, Any]]:
        """Markets, optionally of one cell or region."""
        q = select(Market).order_by(Market.code)
        if cell:
            q = q.where(Market.cell == cell)
        if region:
            q = q.where(Market.region == region)
        with self.dbs.global_session() as s:
            return [market_dict(m) for m in s.scalars(q)]

    def get(self, code: str) -> dict[str, Any]:
        """One market; NotFound for unknown codes."""
        with self.dbs.global_session() as s:
            return market_dict(get_market(s, code, missing=NotFound))

    def profiles(self) -> dict[str, builtins.list[str]]:
        """Every market's certification profile (for the certify context to evaluate reports against)."""
        with self.dbs.global_session() as s:
            return {m.code: list(m.cert_profile) for m in s.scalars(select(Market))}


def get_market(s: Session, code: str, *, missing: type[NotFound] | type[InvalidInput] = InvalidInput) -> Market:
    """A market row or an error naming the code."""
    m = s.get(Market, (code or "").upper())
    if m is None:
        raise missing(f"unknown market {code!r} (ISO 3166 alpha-2, see `ecohub market list`)",
                      code=ErrorCode.UNKNOWN_MARKET)
    return m


class ListingService:
    """Listings: only approved/launched products, only in markets whose certification profile they passed."""

    def __init__(self, dbs: Databases, bus: EventBus, products: ProductService,
                 pricing: PricingService | None = None) -> None:
        self.dbs = dbs
        self.bus = bus
        self.products = products
        self.pricing = pricing or PricingService(dbs)

    def add(self, model: str, market: str, *, price: Decimal | str | int, sku: str | None = None,
            currency: str | None = None, availability: str = Availability.IN_STOCK, actor: str,
            price_override: str | None = None) -> dict[str, Any]:
        """List a product in a market; refused unless approved/launched and certified for that market."""
        avail = _availability(availability)
        with self.dbs.global_session() as s:
            m = get_market(s, market)
            product = s.get(Product, model)
            if product is None:
                raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
            if Stage(product.stage) not in LISTABLE:
                raise Conflict(f"{model} is at stage {product.stage}; only approved or launched products can be "
                               "listed", code=ErrorCode.NOT_LISTABLE)
            why = self.products.why_closed(model, product.spec_hash, [m.code]).get(m.code)
            if why is not None:
                raise Conflict(
                    f"{model} is not certified for {m.code} (profile: {', '.join(m.cert_profile)}): {why}",
                    code=ErrorCode.CERTIFICATION_REQUIRED)
            if currency and currency.upper() != m.currency:
                raise InvalidInput(f"prices in {m.code} are in {m.currency}, not {currency}",
                                   code=ErrorCode.WRONG_CURRENCY)
            amount = money(price, field="price", currency=m.currency, positive=True)
            self.pricing.admit(s, model=model, market=m.code, currency=m.currency, price=amount, actor=actor,
                               override=price_override)
            sku = (sku or f"{model}-{m.code}".upper().replace(".", "-"))[:64]
            if s.scalar(select(Listing.id).where(Listing.model == model, Listing.market == m.code)) is not None:
                raise Conflict(f"{model} is already listed in {m.code}; change it instead",
                               code=ErrorCode.ALREADY_LISTED)
            if s.scalar(select(Listing.id).where(Listing.sku == sku)) is not None:
                raise Conflict(f"SKU {sku} is taken", code=ErrorCode.SKU_TAKEN)
            row = Listing(model=model, market=m.code, sku=sku, price=amount, currency=m.currency,
                          availability=avail, actor=actor)
            s.add(row)
            s.flush()
            out = listing_dict(row)
        self.bus.publish([ListingChanged(model, out["market"], avail)])
        return out

    def update(self, listing_id: int, *, price: Decimal | str | int | None = None,
               availability: str | None = None, actor: str, price_override: str | None = None) -> dict[str, Any]:
        """Change a listing's price (checked against the pricing policy) or availability."""
        with self.dbs.global_session() as s:
            row = s.get(Listing, listing_id)
            if row is None:
                raise NotFound(f"no listing {listing_id}", code=ErrorCode.UNKNOWN_LISTING)
            if price is not None:
                row.price = money(price, field="price", currency=row.currency, positive=True)
                self.pricing.admit(s, model=row.model, market=row.market, currency=row.currency, price=row.price,
                                   actor=actor, override=price_override)
            if availability is not None:
                avail = _availability(availability)
                if avail not in OFF_SALE and (row.availability in OFF_SALE or avail != row.availability):
                    product = s.get(Product, row.model)
                    assert product is not None  # listings cascade with their product
                    why = self.products.why_closed(row.model, product.spec_hash, [row.market]).get(row.market)
                    if why is not None:
                        raise Conflict(f"{row.model} cannot go on sale in {row.market}: {why}",
                                       code=ErrorCode.CERTIFICATION_REQUIRED)
                row.availability = avail
                row.reason = "suspended by the operator" if avail == Availability.SUSPENDED else None
            row.actor = actor
            s.flush()
            out = listing_dict(row)
        self.bus.publish([ListingChanged(out["model"], out["market"], out["availability"])])
        return out

    def reevaluate(self, model: str | None = None, *, actor: str = "gate") -> builtins.list[dict[str, Any]]:
        """Take off sale every listing (of one product, or all) whose market no longer opens for the product's
        current spec (report for an old spec, expired or revoked evidence or report): availability `suspended`, with
        the reason. Returns the suspended listings. Listings come back on sale only by an operator's change, which
        the gate checks again."""
        q = (select(Listing, Product.spec_hash).join(Product, Product.model == Listing.model)
             .where(Listing.availability.notin_(list(OFF_SALE))))
        if model is not None:
            q = q.where(Listing.model == model)
        suspended: builtins.list[dict[str, Any]] = []
        with self.dbs.global_session() as s:
            per_product: dict[tuple[str, str], builtins.list[Listing]] = {}
            for row, spec_hash in s.execute(q):
                per_product.setdefault((row.model, spec_hash), []).append(row)
            for (m, spec_hash), rows in per_product.items():
                closed = self.products.why_closed(m, spec_hash, [r.market for r in rows])
                for row in rows:
                    if row.market in closed:
                        row.availability = Availability.SUSPENDED
                        row.reason = closed[row.market][:300]
                        row.actor = actor
                        s.flush()
                        suspended.append(listing_dict(row))
        self.bus.publish([ListingChanged(x["model"], x["market"], x["availability"]) for x in suspended])
        return suspended

    def on_spec_changed(self, event: ProductSpecChanged) -> None:
        """A new spec version: the reports of the old one no longer count for its listings."""
        self.reevaluate(event.model)

    def on_certification_changed(self, event: Any) -> None:
        """A report or a piece of evidence of `event.model` changed (the certify context's events)."""
        self.reevaluate(str(event.model))

    def get(self, listing_id: int, *, caller: Principal | None = None) -> dict[str, Any]:
        """One listing with its product's partner (a partner caller: its own products' listings)."""
        with self.dbs.global_session() as s:
            row = s.get(Listing, listing_id)
            if row is None:
                raise NotFound(f"no listing {listing_id}", code=ErrorCode.UNKNOWN_LISTING)
            partner = s.scalar(select(Product.partner_id).where(Product.model == row.model))
            out = {**listing_dict(row), "partner_id": partner}
        check_partner(caller, partner)
        return out

    def list(self, *, model: str | None = None, market: str | None = None, partner_id: str | None = None,
             availability: str | None = None, limit: int = 1000, offset: int = 0,
             caller: Principal | None = None) -> builtins.list[dict[str, Any]]:
        """Listings, optionally by product, market, partner or availability (a partner caller: its own)."""
        partner_id = partner_filter(caller, partner_id)
        q = select(Listing).order_by(Listing.model, Listing.market).limit(limit).offset(offset)
        if model:
            q = q.where(Listing.model == model)
        if market:
            q = q.where(Listing.market == market.upper())
        if availability:
            q = q.where(Listing.availability == availability)
        if partner_id:
            q = q.join(Product, Product.model == Listing.model).where(Product.partner_id == partner_id)
        with self.dbs.global_session() as s:
            return [listing_dict(x) for x in s.scalars(q)]

    def markets_per_product(self) -> dict[str, int]:
        """How many markets each listed product is offered in (not counting discontinued listings)."""
        q = (select(Listing.model, func.count()).where(Listing.availability.notin_(list(OFF_SALE)))
             .group_by(Listing.model))
        with self.dbs.global_session() as s:
            return {model: n for model, n in s.execute(q)}


def _availability(value: str) -> str:
    try:
        return Availability(value)
    except ValueError as err:
        raise InvalidInput(f"unknown availability {value!r}; one of: {', '.join(Availability)}",
                           code=ErrorCode.INVALID_AVAILABILITY) from err
