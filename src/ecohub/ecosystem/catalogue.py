"""Catalogue queries over ~2,000 products (by category, family, market, partner, stage) and operator KPIs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, func, select

from ecohub.auth import Principal, partner_filter
from ecohub.ecosystem.channel import ListingService
from ecohub.ecosystem.domain import OFF_SALE, Stage
from ecohub.ecosystem.models import Category, Listing, Product
from ecohub.ecosystem.partners import PartnerService
from ecohub.ecosystem.prices import PricingService
from ecohub.errors import ErrorCode, InvalidInput
from ecohub.store import Databases

COUNT_BY = ("category", "family", "stage", "partner", "market")


class CatalogueService:
    """Read-only catalogue queries; every filter is an indexed column so counts stay fast."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs

    def categories(self) -> list[dict[str, Any]]:
        """The taxonomy with the number of products in each category."""
        counts = select(Product.category, func.count().label("n")).group_by(Product.category).subquery()
        q = (select(Category.slug, Category.name, Category.family, func.coalesce(counts.c.n, 0))
             .outerjoin(counts, counts.c.category == Category.slug).order_by(Category.family, Category.slug))
        with self.dbs.global_session() as s:
            return [{"slug": slug, "name": name, "family": fam, "products": n} for slug, name, fam, n in s.execute(q)]

    @staticmethod
    def _filtered(q: Select[Any] | Any, *, category: str | None, family: str | None, market: str | None,
                  partner_id: str | None, stage: str | None, text: str | None) -> Select[Any]:
        if category:
            q = q.where(Product.category == category)
        if family:
            q = q.where(Product.category.in_(select(Category.slug).where(Category.family == family)))
        if partner_id:
            q = q.where(Product.partner_id == partner_id)
        if stage:
            q = q.where(Product.stage == stage)
        if market:
            q = q.where(Product.model.in_(select(Listing.model).where(
                Listing.market == market.upper(), Listing.availability.notin_(list(OFF_SALE)))))
        if text:
            like = f"%{text.lower()}%"
            q = q.where(func.lower(Product.name).like(like) | Product.model.like(like))
        return q

    def search(self, *, category: str | None = None, family: str | None = None, market: str | None = None,
               partner_id: str | None = None, stage: str | None = None, text: str | None = None, limit: int = 100,
               offset: int = 0, caller: Principal | None = None) -> dict[str, Any]:
        """Products matching all filters (market = listed there), with the total count for paging (a partner
        caller: its own)."""
        filters = {"category": category, "family": family, "market": market,
                   "partner_id": partner_filter(caller, partner_id),
                   "stage": stage, "text": text}
        q = self._filtered(select(Product.model, Product.name, Product.category, Product.partner_id, Product.stage,
                                  Product.target_price, Product.price_currency), **filters)
        total_q = self._filtered(select(func.count()).select_from(Product), **filters)
        with self.dbs.global_session() as s:
            total = s.scalar(total_q) or 0
            items = [{"model": m, "name": n, "category": c, "partner_id": p, "stage": st,
                      "target_price": None if price is None else str(price), "price_currency": cur}
                     for m, n, c, p, st, price, cur in s.execute(q.order_by(Product.model).limit(limit).offset(offset))]
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    def counts(self, by: str, *, partner_id: str | None = None, stage: str | None = None,
               caller: Principal | None = None) -> dict[str, int]:
        """Number of products per category, family, stage, partner or market (listed, not discontinued)."""
        partner_id = partner_filter(caller, partner_id)
        if by not in COUNT_BY:
            raise InvalidInput(f"count by one of: {', '.join(COUNT_BY)}", code=ErrorCode.INVALID_GROUP)
        if by == "market":
            q = (select(Listing.market, func.count(func.distinct(Listing.model)))
                 .join(Product, Product.model == Listing.model)
                 .where(Listing.availability.notin_(list(OFF_SALE))).group_by(Listing.market))
        elif by == "family":
            q = (select(Category.family, func.count()).select_from(Product)
                 .join(Category, Category.slug == Product.category).group_by(Category.family))
        else:
            col: Any = {"category": Product.category, "stage": Product.stage, "partner": Product.partner_id}[by]
            q = select(col, func.count()).select_from(Product).group_by(col)
        if partner_id:
            q = q.where(Product.partner_id == partner_id)
        if stage:
            q = q.where(Product.stage == stage)
        with self.dbs.global_session() as s:
            return {str(k): n for k, n in s.execute(q)}


class KpiService:
    """The operator's dashboard numbers; device counts come from the connect context's service function."""

    def __init__(self, catalogue: CatalogueService, partners: PartnerService, listings: ListingService,
                 devices_by_partner: Callable[[], dict[str, int]] | None = None,
                 pricing: PricingService | None = None) -> None:
        self.pricing = pricing
        self.catalogue = catalogue
        self.partners = partners
        self.listings = listings
        self.devices_by_partner = devices_by_partner

    def all(self) -> dict[str, Any]:
        """Partners by stage, portfolio value over time, products per stage, markets per product, devices."""
        per_product = self.listings.markets_per_product()
        spread = Counter(per_product.values())
        by_stage = self.catalogue.counts("stage")
        points = self.partners.valuations()  # one read for the totals and the history
        portfolio = self.partners.portfolio(points)
        return {
            "partners_by_stage": self.partners.by_stage(),
            "portfolio_total": portfolio["total"],
            "portfolio_realised": portfolio["realised"],
            "portfolio_history": self.partners.portfolio_history(points),
            "products_by_stage": {st.value: by_stage.get(st.value, 0) for st in Stage},
            "markets_per_product": {
                "listed_products": len(per_product),
                "average": round(sum(per_product.values()) / len(per_product), 2) if per_product else 0.0,
                "max": max(per_product.values(), default=0),
                "distribution": {str(k): spread[k] for k in sorted(spread)},
            },
            "devices_by_partner": self.devices_by_partner() if self.devices_by_partner else {},
            "pricing_by_market": self.pricing.by_market() if self.pricing else {},
        }
