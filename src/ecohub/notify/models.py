"""Tables of the notify context (cell plane: a user's notifications are their personal data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, DEVICE_ID, TIMESTAMP, USER_ID, not_personal
from ecohub.store.db import CellBase, JsonType


class Notification(CellBase):
    """One notification of one user: what happened in words, how serious, which device; read or not."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_created", "user_id", "created_ms"),
                      Index("ix_notifications_created", "created_ms"))
    __privacy__ = {**not_personal("id", "kind", "severity"), "user_id": USER_ID, "home_id": USER_ID,
                   "did": DEVICE_ID, "title": DEVICE_DATA, "body": DEVICE_DATA, "created_ms": TIMESTAMP,
                   "read_ms": TIMESTAMP, **not_personal("code"), "params": DEVICE_DATA}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))  # automation, offline, share
    severity: Mapped[str] = mapped_column(String(8))  # info, warning, critical
    # the message as rendered in English when stored (rows from before codes carry only this); with `code` and
    # `params` each reader gets it rendered in their own language
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    home_id: Mapped[str | None] = mapped_column(String(32))
    did: Mapped[str | None] = mapped_column(String(40))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    read_ms: Mapped[int | None] = mapped_column(BigInteger)
    code: Mapped[str | None] = mapped_column(String(48))  # a message of ecohub.notify.messages; None: free text
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
