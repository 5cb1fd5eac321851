"""Tables of the twin context (cell plane)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, DEVICE_ID, OWNER, SEALED_DEVICE_DATA, TIMESTAMP, not_personal
from ecohub.store.db import CellBase, JsonType


class Twin(CellBase):
    """One row per device: connection state and a version bumped on every accepted change."""

    __tablename__ = "twins"
    __privacy__ = {**not_personal("version"), "did": DEVICE_ID, "online": DEVICE_DATA, "online_ms": TIMESTAMP,
                   "updated_ms": TIMESTAMP, **not_personal("firmware_version", "state_seq")}

    did: Mapped[str] = mapped_column(String(40), primary_key=True)
    online: Mapped[bool | None] = mapped_column(Boolean)
    online_ms: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    firmware_version: Mapped[str | None] = mapped_column(String(32))  # as the device said on coming online
    state_seq: Mapped[int | None] = mapped_column(BigInteger)  # arrival order of the state message shown: newer wins


class TwinProperty(CellBase):
    """The last reported (and the desired) value of one property; the device's later message wins."""

    __tablename__ = "twin_properties"
    __privacy__ = {**not_personal("key"), "did": DEVICE_ID, "value": DEVICE_DATA, "ts": TIMESTAMP,
                   "desired": DEVICE_DATA, "desired_ts": TIMESTAMP, **not_personal("msg_id", "seq"),
                   **not_personal("desired_state", "desired_code", "desired_cmd", "desired_seq"),
                   "desired_sent_ms": TIMESTAMP,
                   "subject": OWNER, "sealed": SEALED_DEVICE_DATA}

    did: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[Any | None] = mapped_column(JsonType)
    ts: Mapped[int | None] = mapped_column(BigInteger)
    desired: Mapped[Any | None] = mapped_column(JsonType)
    desired_ts: Mapped[int | None] = mapped_column(BigInteger)
    msg_id: Mapped[int | None] = mapped_column(BigInteger)  # the device's message id (restarts after a reboot)
    seq: Mapped[int | None] = mapped_column(BigInteger)  # the message's arrival order at the broker: newer wins
    subject: Mapped[str | None] = mapped_column(String(32))  # whose key seals the reported value
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # the reported value when the device is bound
    # delivery of the desired value (twin.domain.DesiredState): which command carries it, what the device answered
    desired_state: Mapped[str | None] = mapped_column(String(12))
    desired_code: Mapped[int | None] = mapped_column(Integer)
    desired_cmd: Mapped[int | None] = mapped_column(BigInteger)
    desired_seq: Mapped[int | None] = mapped_column(BigInteger)  # the order values were set in: delivered in it
    desired_sent_ms: Mapped[int | None] = mapped_column(BigInteger)
