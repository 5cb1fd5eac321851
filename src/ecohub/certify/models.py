"""Tables of certification (global plane: reports name products and test units, never people)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import STAFF, not_personal
from ecohub.store.db import BigId, GlobalBase, JsonType, utcnow


class CertificationReport(GlobalBase):
    """A signed report as issued; the document is kept byte-for-byte meaningful (JSON) so it can be re-verified."""

    __tablename__ = "certification_reports"
    __privacy__ = not_personal("report_id", "model", "spec_hash", "passed", "markets_passed", "key_id", "issued_at",
                               "expires_at", "document", "created_at")

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    spec_hash: Mapped[str] = mapped_column(String(64))
    passed: Mapped[bool] = mapped_column(Boolean)
    markets_passed: Mapped[list[str]] = mapped_column(JsonType)
    key_id: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CertificationEvidence(GlobalBase):
    """A certificate or lab report for one regime of one market of a product (the file is kept by content hash)."""

    __tablename__ = "certification_evidence"
    __privacy__ = {**not_personal("id", "model", "market", "regime", "issuer", "number", "scope", "valid_from",
                                  "valid_until", "file_sha256", "file_name", "file_size", "status", "reason",
                                  "created_at", "updated_at"),
                   "added_by": STAFF, "decided_by": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    market: Mapped[str] = mapped_column(String(2))
    regime: Mapped[str] = mapped_column(String(32))
    issuer: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    file_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300), default="")  # why it was revoked
    added_by: Mapped[str] = mapped_column(String(128))
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)  # who accepted or revoked it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
