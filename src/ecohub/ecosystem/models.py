"""Tables of the ecosystem context (global plane: no personal data)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import PARTNER_CONTACT, STAFF, not_personal
from ecohub.store.db import BigId, GlobalBase, JsonType, utcnow


class Product(GlobalBase):
    """A product the brand defines with a partner; its current spec and lifecycle stage."""

    __tablename__ = "products"
    __privacy__ = not_personal("model", "partner_id", "category", "name", "stage", "design_ref", "target_price",
                               "price_currency", "forecast_volume", "spec", "spec_hash", "spec_version", "created_at",
                               "updated_at")

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(64), default="uncategorised", index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    stage: Mapped[str] = mapped_column(String(32), index=True)
    design_ref: Mapped[str] = mapped_column(String(200), default="", server_default="")
    target_price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    price_currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    forecast_volume: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType)
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SpecVersion(GlobalBase):
    """Every spec a product ever had, so reports and diffs can refer to older versions."""

    __tablename__ = "spec_versions"
    __privacy__ = not_personal("model", "version", "spec", "spec_hash", "created_at")

    model: Mapped[str] = mapped_column(ForeignKey("products.model", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType)
    spec_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProductTransition(GlobalBase):
    """One lifecycle step of a product: who moved it, from where, to where, when and why."""

    __tablename__ = "product_transitions"
    __privacy__ = {**not_personal("id", "model", "from_stage", "to_stage", "reason", "at"), "actor": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(ForeignKey("products.model", ondelete="CASCADE"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Category(GlobalBase):
    """One node of the product category taxonomy (loaded by migration 0002)."""

    __tablename__ = "categories"
    __privacy__ = not_personal("slug", "name", "family")

    slug: Mapped[str] = mapped_column(String(48), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    family: Mapped[str] = mapped_column(String(48), index=True)


class Market(GlobalBase):
    """A market: an ISO 3166 country with its currency, language, serving cell and certification profile."""

    __tablename__ = "markets"
    __privacy__ = not_personal("code", "alpha3", "numeric", "name", "currency", "language", "region", "cell",
                               "cert_profile")

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    alpha3: Mapped[str] = mapped_column(String(3), unique=True)
    numeric: Mapped[str] = mapped_column(String(3))
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    language: Mapped[str] = mapped_column(String(8))
    region: Mapped[str] = mapped_column(String(48))
    cell: Mapped[str] = mapped_column(String(16), index=True)
    cert_profile: Mapped[list[str]] = mapped_column(JsonType)


class ProductMarket(GlobalBase):
    """A target market of a product (approval needs a passing report for each)."""

    __tablename__ = "product_markets"
    __privacy__ = not_personal("model", "market")

    model: Mapped[str] = mapped_column(ForeignKey("products.model", ondelete="CASCADE"), primary_key=True)
    market: Mapped[str] = mapped_column(ForeignKey("markets.code"), primary_key=True, index=True)


class Partner(GlobalBase):
    """An ecosystem company or third-party developer; the contact is a business role address, kept minimal."""

    __tablename__ = "partners"
    __privacy__ = {**not_personal("id", "name", "kind", "country", "founded_on", "status", "stage", "contact_role",
                                  "created_at"),
                   "contact_email": PARTNER_CONTACT}

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    country: Mapped[str] = mapped_column(ForeignKey("markets.code"))
    founded_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    stage: Mapped[str] = mapped_column(String(24), index=True)
    contact_role: Mapped[str] = mapped_column(String(64), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InvestmentRound(GlobalBase):
    """A financing round; post-money and the brand's stake after it are computed, never typed in."""

    __tablename__ = "investment_rounds"
    __table_args__ = (Index("ix_investment_rounds_partner_closed", "partner_id", "closed_on"),)
    __privacy__ = {**not_personal("id", "partner_id", "series", "closed_on", "currency", "pre_money", "raised",
                                  "brand_amount", "post_money", "brand_stake_after", "created_at"),
                   "actor": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(24))
    closed_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    pre_money: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    raised: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    brand_amount: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    post_money: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    brand_stake_after: Mapped[Decimal] = mapped_column(Numeric(12, 10))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StakeOverride(GlobalBase):
    """An audited exception to the minority-stake policy: who allowed which round, when and why."""

    __tablename__ = "stake_overrides"
    __privacy__ = {**not_personal("id", "partner_id", "round_id", "stake_after", "reason", "at"), "actor": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("investment_rounds.id", ondelete="CASCADE"))
    stake_after: Mapped[Decimal] = mapped_column(Numeric(12, 10))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PartnerExit(GlobalBase):
    """An IPO or acquisition of a partner, with the valuation and the brand's stake at that moment."""

    __tablename__ = "partner_exits"
    __privacy__ = {**not_personal("id", "partner_id", "kind", "exited_on", "valuation", "currency", "venue",
                                  "brand_stake", "brand_proceeds", "at"),
                   "actor": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    exited_on: Mapped[date] = mapped_column(Date)
    valuation: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    currency: Mapped[str] = mapped_column(String(3))
    venue: Mapped[str] = mapped_column(String(64), default="")
    brand_stake: Mapped[Decimal] = mapped_column(Numeric(12, 10))
    brand_proceeds: Mapped[Decimal | None] = mapped_column(Numeric(20, 2))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Supplier(GlobalBase):
    """A component supplier the brand can negotiate with for the whole ecosystem."""

    __tablename__ = "suppliers"
    __privacy__ = not_personal("id", "name", "country", "kind", "created_at")

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Component(GlobalBase):
    """A part a supplier sells, with its unit cost (Decimal, never float)."""

    __tablename__ = "components"
    __privacy__ = not_personal("part_no", "supplier_id", "name", "kind", "unit_cost", "currency")

    part_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    unit_cost: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    currency: Mapped[str] = mapped_column(String(3))


class BomLine(GlobalBase):
    """One line of a product's bill of materials."""

    __tablename__ = "bom_lines"
    __privacy__ = not_personal("model", "part_no", "quantity")

    model: Mapped[str] = mapped_column(ForeignKey("products.model", ondelete="CASCADE"), primary_key=True)
    part_no: Mapped[str] = mapped_column(ForeignKey("components.part_no"), primary_key=True, index=True)
    quantity: Mapped[int] = mapped_column(Integer)


class Listing(GlobalBase):
    """An approved product offered in one market's channel: SKU, price in the market's currency, availability."""

    __tablename__ = "listings"
    __table_args__ = (UniqueConstraint("model", "market"),)
    __privacy__ = {**not_personal("id", "model", "market", "sku", "price", "currency", "availability", "reason",
                                  "created_at", "updated_at"),
                   "actor": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(ForeignKey("products.model", ondelete="CASCADE"), index=True)
    market: Mapped[str] = mapped_column(ForeignKey("markets.code"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    price: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    currency: Mapped[str] = mapped_column(String(3))
    availability: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(300), nullable=True)  # why it was suspended
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DesignVersion(GlobalBase):
    """One version of a product's industrial design: a file (render, CAD, drawing) stored by its content hash,
    uploaded by the product's partner and approved or rejected by the brand."""

    __tablename__ = "design_versions"
    __table_args__ = (UniqueConstraint("model", "version"),)
    __privacy__ = {**not_personal("id", "model", "version", "kind", "filename", "media_type", "size", "sha256",
                                  "note", "status", "uploaded_at", "decided_at", "decision_note"),
                   "uploaded_by": STAFF, "decided_by": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(ForeignKey("products.model", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(Text, default="")


class PricingPolicy(GlobalBase):
    """The brand's pricing settings for a product in a market; `*` as model or market is the default for all
    (an empty setting inherits: product+market → product+`*` → `*`+`*` → the built-in defaults)."""

    __tablename__ = "pricing_policies"
    __privacy__ = {**not_personal("model", "market", "margin_floor", "margin_ceiling", "band", "other_cost_rate",
                                  "other_cost_fixed", "tax_rate", "updated_at"),
                   "actor": STAFF}

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    market: Mapped[str] = mapped_column(String(2), primary_key=True)
    margin_floor: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    margin_ceiling: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    band: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    other_cost_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    other_cost_fixed: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    actor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
