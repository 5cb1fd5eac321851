"""Tables of the telemetry context (cell plane)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, DEVICE_ID, OWNER, SEALED_DEVICE_DATA, TIMESTAMP, not_personal
from ecohub.store.db import BigId, CellBase, JsonType


class Sample(CellBase):
    """One reported property value at device (or receive) time; sealed with the owner's key when bound."""

    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_did_key_ts", "did", "key", "ts"), Index("ix_telemetry_ts", "ts"))
    __privacy__ = {**not_personal("id", "key", "msg_id"), "did": DEVICE_ID, "ts": TIMESTAMP, "value": DEVICE_DATA,
                   "subject": OWNER, "sealed": SEALED_DEVICE_DATA}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(16))
    ts: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[Any | None] = mapped_column(JsonType)  # an unbound device's value; else NULL and sealed
    msg_id: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str | None] = mapped_column(String(32))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class DeviceEvent(CellBase):
    """One event a device reported, with its arguments keyed by `siid.piid` (sealed when the device is bound)."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_did_ts", "did", "ts"),)
    __privacy__ = {**not_personal("id", "siid", "eiid", "msg_id"), "did": DEVICE_ID, "arguments": DEVICE_DATA,
                   "ts": TIMESTAMP, "subject": OWNER, "sealed": SEALED_DEVICE_DATA}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(40))
    siid: Mapped[int] = mapped_column(Integer)
    eiid: Mapped[int] = mapped_column(Integer)
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    ts: Mapped[int] = mapped_column(BigInteger)
    msg_id: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str | None] = mapped_column(String(32))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class Rollup(CellBase):
    """Aggregates (count, sum, min, max, first, last) of one property over one hour or day, per sealing owner.

    Kept longer than raw samples; sealed with the owner's key like the samples it sums up (an aggregate of a
    person's readings is their data too). `res` is the bucket size in ms, `bucket` its UTC-aligned start.
    """

    __tablename__ = "telemetry_rollups"
    __table_args__ = (Index("ix_telemetry_rollups_did_key_res_bucket", "did", "key", "res", "bucket"),)
    __privacy__ = {**not_personal("id", "key", "res"), "did": DEVICE_ID, "bucket": TIMESTAMP, "stats": DEVICE_DATA,
                   "subject": OWNER, "sealed": SEALED_DEVICE_DATA}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(16))
    res: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[int] = mapped_column(BigInteger)
    stats: Mapped[Any | None] = mapped_column(JsonType)  # an unbound device's Stats; else NULL and sealed
    subject: Mapped[str | None] = mapped_column(String(32))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class RetentionPolicy(CellBase):
    """How long a product's (or one of its properties') raw samples and rollups are kept; set by the operator.

    A row per (model, key) in every cell (each cell enforces its own); key "" is the whole product."""

    __tablename__ = "telemetry_retention"
    __privacy__ = not_personal("model", "key", "raw_days", "rollup_days", "updated_ms", "updated_by")

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    raw_days: Mapped[int | None] = mapped_column(Integer)
    rollup_days: Mapped[int | None] = mapped_column(Integer)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64))


class JobMark(CellBase):
    """Where the maintenance job got to: the last sample id rolled up, the time rollups are complete before."""

    __tablename__ = "telemetry_marks"
    __privacy__ = not_personal("name", "value")

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
