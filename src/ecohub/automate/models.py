"""Tables of the automate context (cell plane: rules and their runs are personal data of the home)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, FREE_TEXT, TIMESTAMP, USER_ID, not_personal
from ecohub.store.db import BigId, CellBase, JsonType, utcnow


class AutomationRule(CellBase):
    """A rule of a home: its canonical document (triggers, conditions, actions), whether it is enabled and why not."""

    __tablename__ = "automation_rules"
    __privacy__ = {**not_personal("id", "enabled", "disabled_reason", "version"), "home_id": USER_ID, "name": FREE_TEXT,
                   "definition": DEVICE_DATA, "created_by": USER_ID, "created_at": TIMESTAMP, "updated_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class AutomationRun(CellBase):
    """One time a rule's trigger matched: why, what the conditions said, what each action did."""

    __tablename__ = "automation_runs"
    __table_args__ = (Index("ix_automation_runs_rule_ts", "rule_id", "ts_ms"),)
    __privacy__ = {**not_personal("id", "rule_id", "outcome", "duration_ms"), "ts_ms": TIMESTAMP,
                   "trigger": DEVICE_DATA, "conditions": DEVICE_DATA, "actions": DEVICE_DATA}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(24))  # fired, conditions_false, rate_limited, failed, overloaded
    trigger: Mapped[dict[str, Any]] = mapped_column(JsonType)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    actions: Mapped[list[Any] | None] = mapped_column(JsonType)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class Scene(CellBase):
    """A scene of a home: several devices set in one tap (canonical `set` actions, checked against each spec)."""

    __tablename__ = "scenes"
    __privacy__ = {**not_personal("id"), "home_id": USER_ID, "name": FREE_TEXT, "actions": DEVICE_DATA,
                   "created_by": USER_ID, "created_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    actions: Mapped[list[Any]] = mapped_column(JsonType)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
