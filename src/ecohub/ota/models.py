"""Tables of the ota context: images, signing keys and campaigns on the global plane; per-device progress in cells.

Per-device progress lives in the cell that serves the device (a did and its state are device data, kept in the
device's region like its twin); the campaign itself names only a model, a version and percentages (global).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import DEVICE_DATA, DEVICE_ID, STAFF, TIMESTAMP, not_personal
from ecohub.store.db import BigId, CellBase, GlobalBase, JsonType, utcnow


class SigningKey(GlobalBase):
    """A partner's Ed25519 public key for firmware images (the private half never reaches the hub)."""

    __tablename__ = "firmware_signing_keys"
    __privacy__ = not_personal("key_id", "partner_id", "public_key", "created_at", "revoked_at")

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FirmwareImage(GlobalBase):
    """One firmware image of a product: content hash, size, the partner's signature and, once approved, the brand's."""

    __tablename__ = "firmware_images"
    __table_args__ = (UniqueConstraint("model", "version", name="uq_firmware_images_model_version"),)
    __privacy__ = {**not_personal("id", "model", "partner_id", "version", "sha256", "size", "partner_key_id",
                                  "partner_sig", "brand_key_id", "brand_sig", "status", "notes", "created_at",
                                  "approved_at"), "uploaded_by": STAFF, "approved_by": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    partner_key_id: Mapped[str] = mapped_column(String(16))
    partner_sig: Mapped[str] = mapped_column(String(100))
    brand_key_id: Mapped[str | None] = mapped_column(String(16))
    brand_sig: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="uploaded")  # uploaded → approved
    notes: Mapped[str] = mapped_column(Text, default="")
    uploaded_by: Mapped[str] = mapped_column(String(128), default="")
    approved_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Campaign(GlobalBase):
    """A staged rollout of one image to the devices of its model (optionally one cell)."""

    __tablename__ = "ota_campaigns"
    __privacy__ = {**not_personal("id", "model", "partner_id", "image_id", "version", "rollback", "market", "cell",
                                  "stages", "threshold", "device_timeout_s", "max_in_flight", "max_per_minute",
                                  "stage", "status", "reason", "targets",
                                  "accepted_failed", "accepted_finished",
                                  "created_at", "updated_at"), "created_by": STAFF}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    image_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(32))
    rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    market: Mapped[str | None] = mapped_column(String(8))
    cell: Mapped[str | None] = mapped_column(String(16))
    stages: Mapped[list[int]] = mapped_column(JsonType)
    threshold: Mapped[float] = mapped_column(Float)  # percent of finished devices that may fail before it halts
    device_timeout_s: Mapped[int] = mapped_column(Integer)
    # rollout caps (0: none): devices updating at once, and offers per minute (first offers and re-offers)
    max_in_flight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_per_minute: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stage: Mapped[int] = mapped_column(Integer, default=0)  # index into stages of the stage now offered
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    targets: Mapped[int] = mapped_column(Integer, default=0)
    # failed and finished devices the operator accepted by resuming after a halt (the rate counts what follows)
    accepted_failed: Mapped[int] = mapped_column(Integer, default=0)
    accepted_finished: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeviceUpdate(CellBase):
    """One device's part in a campaign: its stage and where its update stands."""

    __tablename__ = "ota_device_updates"
    __table_args__ = (Index("ix_ota_device_updates_did", "did"),
                      Index("ix_ota_device_updates_campaign_state", "campaign_id", "state"))
    __privacy__ = {**not_personal("campaign_id", "stage", "state", "progress", "code", "offers"),
                   "did": DEVICE_ID, "from_version": DEVICE_DATA, "message": DEVICE_DATA,
                   "offered_ms": TIMESTAMP, "updated_ms": TIMESTAMP}

    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    did: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    code: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(200), default="")
    from_version: Mapped[str | None] = mapped_column(String(32))
    offers: Mapped[int] = mapped_column(Integer, default=0)
    offered_ms: Mapped[int | None] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class EngineLease(GlobalBase):
    """Who runs the OTA engine of a set of cells now: one holder, until `expires_ms` unless it renews."""

    __tablename__ = "ota_engine_leases"
    __privacy__ = not_personal("name", "holder", "expires_ms", "acquired_ms")

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))  # host:pid:random of the process
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    acquired_ms: Mapped[int] = mapped_column(BigInteger)
