"""Tables of the connect context; they live in the region cell that serves the device."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, DEVICE_ID, TIMESTAMP, USER_ID, not_personal
from ecohub.store.db import BigId, CellBase, JsonType, utcnow


class Device(CellBase):
    """A provisioned device: its opaque id, model, and a salted hash of its secret (never the secret)."""

    __tablename__ = "devices"
    __privacy__ = not_personal("did", "model", "partner_id", "secret_salt", "secret_hash", "bind_code_hash", "status",
                               "created_at", "revoked_at", "bound",
                               why="manufacturing record of the device; it is linked to a person only through bindings")

    did: Mapped[str] = mapped_column(String(40), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    partner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    bind_code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bound: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # to a user: not a partner's


class InboxEntry(CellBase):
    """(device, message id, payload digest) already stored: a redelivered message must not create a second row,
    while a rebooted device's new message that reuses an id is not a redelivery (its payload differs)."""

    __tablename__ = "inbox"
    __privacy__ = {**not_personal("msg_id", "digest"), "did": DEVICE_ID, "received_ms": TIMESTAMP}

    did: Mapped[str] = mapped_column(String(40), primary_key=True)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digest: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_ms: Mapped[int] = mapped_column(BigInteger)


class DeadLetter(CellBase):
    """A message or part of one that could not be accepted, with the reason; nothing is dropped silently."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_did_received", "did", "received_ms"),)
    __privacy__ = {**not_personal("id", "msg_id", "code", "size"), "did": DEVICE_ID, "topic": DEVICE_ID,
                   "reason": DEVICE_DATA, "payload": DEVICE_DATA, "received_ms": TIMESTAMP}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    did: Mapped[str | None] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(256))
    msg_id: Mapped[int | None] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_ms: Mapped[int] = mapped_column(BigInteger)


class Command(CellBase):
    """A request sent to a device and what became of it (sent, replied, failed, timeout)."""

    __tablename__ = "commands"
    __privacy__ = {**not_personal("id", "method", "status", "note"), "did": DEVICE_ID, "params": DEVICE_DATA,
                   "reply": DEVICE_DATA, "requested_by": USER_ID, "created_ms": TIMESTAMP, "finished_ms": TIMESTAMP}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(40), index=True)
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[Any] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16), default="sent")
    reply: Mapped[Any | None] = mapped_column(JsonType)
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")


class BrokerStream(CellBase):
    """The broker stream whose sequence numbers order the twin's values (`seq`, `state_seq`): a stream created anew
    (a wiped JetStream store, another cluster) numbers from 1 again, and the twin's order then starts afresh."""

    __tablename__ = "broker_streams"
    __privacy__ = not_personal("name", "created_ms", why="the broker's own bookkeeping; no device or person in it")

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
