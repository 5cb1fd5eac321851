"""Tables of certification (global plane: reports name products and test units, never people)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import not_personal
from ecohub.store.db import GlobalBase, JsonType, utcnow


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
