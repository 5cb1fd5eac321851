"""Tables of the security audit (cell plane: findings and connect records name devices of that cell)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, DEVICE_ID, LEGITIMATE, STAFF, TIMESTAMP, PersonalData, not_personal
from ecohub.store.db import BigId, CellBase, JsonType

SOURCE_ADDRESS = PersonalData("network address (source IP of a device's connection)",
                              "security monitoring of the fleet (repeated failed connects, one device from many "
                              "places)", LEGITIMATE, "security.connect_log_days (30 days), then deleted")
CONNECT_TIME = PersonalData("activity time (hour of a device's connects)", "security monitoring of the fleet",
                            LEGITIMATE, "security.connect_log_days (30 days), then deleted")


class ConnectRecord(CellBase):
    """Device CONNECTs the auth callout decided, counted per device, source address, hour and outcome."""

    __tablename__ = "security_connects"
    __table_args__ = (Index("ix_security_connects_hour", "hour_ms"),)
    __privacy__ = {"did": DEVICE_ID, "host": SOURCE_ADDRESS, "hour_ms": CONNECT_TIME, "last_ms": CONNECT_TIME,
                   **not_personal("allowed", "attempts")}

    did: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    allowed: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_ms: Mapped[int] = mapped_column(BigInteger)


class Finding(CellBase):
    """One problem a check found about one device or product, from first seen until resolved."""

    __tablename__ = "security_findings"
    __table_args__ = (Index("ix_security_findings_check_subject", "check_id", "subject"),
                      Index("ix_security_findings_status_severity", "status", "severity"))
    __privacy__ = {**not_personal("id", "check_id", "subject_kind", "severity", "status", "reason", "notified",
                                  "first_ms", "last_ms", "resolved_ms", "decided_ms"),
                   "subject": DEVICE_ID, "detail": DEVICE_DATA, "decided_by": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(String(48))
    subject_kind: Mapped[str] = mapped_column(String(16))  # device | product
    subject: Mapped[str] = mapped_column(String(64))  # a did or a model
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # open | acknowledged | suppressed | resolved
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    first_ms: Mapped[int] = mapped_column(BigInteger)
    last_ms: Mapped[int] = mapped_column(BigInteger)
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_ms: Mapped[int | None] = mapped_column(BigInteger)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)


class VulnerableFirmware(CellBase):
    """A firmware version of a model the operator marked vulnerable (kept in the hub's default cell)."""

    __tablename__ = "security_vulnerable_firmware"
    __privacy__ = {**not_personal("model", "version", "reason", "marked_ms"), "marked_by": STAFF}

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    marked_by: Mapped[str] = mapped_column(String(128))
    marked_ms: Mapped[int] = mapped_column(BigInteger)


class FirmwareSeen(CellBase):
    """The first and the current firmware version the audit saw a device report (for "never updated")."""

    __tablename__ = "security_firmware_seen"
    __privacy__ = {"did": DEVICE_ID, "first_version": DEVICE_DATA, "version": DEVICE_DATA,
                   "first_ms": TIMESTAMP, "changed_ms": TIMESTAMP}

    did: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_version: Mapped[str] = mapped_column(String(64))
    first_ms: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(64))
    changed_ms: Mapped[int | None] = mapped_column(BigInteger)
