"""Tables of the apps context: registered apps (global plane); users' grants, codes, tokens and push (cell plane)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import CREDENTIAL, DEVICE_DATA, DEVICE_ID, TIMESTAMP, USER_ID, not_personal
from ecohub.store.db import BigId, CellBase, GlobalBase, JsonType, utcnow


class App(GlobalBase):
    """A third-party app registered by a partner (or the operator): its OAuth client; only the secret's hash."""

    __tablename__ = "apps"
    __privacy__ = not_personal("id", "name", "owner_partner", "created_by", "secret_hash", "redirect_uris", "scopes",
                               "privacy_policy_url", "status", "created_at", "suspended_at", "suspended_reason",
                               "rpm_limit", "pushes_per_day",
                               why="a partner's app registration (OAuth client), no end-user data")

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the client id
    name: Mapped[str] = mapped_column(String(100))
    owner_partner: Mapped[str | None] = mapped_column(String(64), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(JsonType)
    scopes: Mapped[list[str]] = mapped_column(JsonType)
    privacy_policy_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="active")
    rpm_limit: Mapped[int] = mapped_column(Integer, default=600)
    pushes_per_day: Mapped[int] = mapped_column(Integer, default=100_000)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_reason: Mapped[str | None] = mapped_column(String(200))


class AppGrant(CellBase):
    """What a user granted an app: scopes, and (in `app_grant_devices`) which devices; one live grant per app+user."""

    __tablename__ = "app_grants"
    __table_args__ = (Index("ix_app_grants_user_app", "user_id", "app_id"),)
    __privacy__ = {**not_personal("id", "app_id", "scopes"), "user_id": USER_ID, "created_at": TIMESTAMP,
                   "updated_at": TIMESTAMP, "revoked_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AppGrantDevice(CellBase):
    """One device a user granted an app (per-device grants, not all-or-nothing)."""

    __tablename__ = "app_grant_devices"
    __privacy__ = {"grant_id": USER_ID, "did": DEVICE_ID}

    grant_id: Mapped[str] = mapped_column(ForeignKey("app_grants.id", ondelete="CASCADE"), primary_key=True)
    did: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class AuthCode(CellBase):
    """An OAuth authorization code (sha256 only) bound to its grant, client, redirect URI and PKCE challenge."""

    __tablename__ = "app_auth_codes"
    __privacy__ = {**not_personal("id", "code_hash", "app_id", "redirect_uri", "scope", "code_challenge",
                                  "code_challenge_method"),
                   "grant_id": USER_ID, "created_at": TIMESTAMP, "expires_at": TIMESTAMP, "used_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("app_grants.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[str] = mapped_column(String(40))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(200))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AppToken(CellBase):
    """An access token and its refresh token (sha256 only); `family` is the code they descend from (rotation and
    reuse detection revoke the whole family)."""

    __tablename__ = "app_tokens"
    __privacy__ = {**not_personal("id", "app_id", "scope", "family"), "access_hash": CREDENTIAL,
                   "refresh_hash": CREDENTIAL, "grant_id": USER_ID, "issued_at": TIMESTAMP,
                   "access_expires_at": TIMESTAMP, "refresh_expires_at": TIMESTAMP, "rotated_at": TIMESTAMP,
                   "revoked_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("app_grants.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[str] = mapped_column(String(40))
    family: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookSubscription(CellBase):
    """Where an app wants a grant's device changes pushed (signed with `secret`, Standard Webhooks)."""

    __tablename__ = "app_webhooks"
    __privacy__ = {**not_personal("id", "app_id", "url", "secret", "events", "status", "failures",
                                  "disabled_reason", "failing_since_ms", "batch_max"),
                   "grant_id": USER_ID, "created_at": TIMESTAMP, "disabled_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(40), index=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("app_grants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))  # the HMAC key: it must be readable to sign
    events: Mapped[list[str]] = mapped_column(JsonType)
    batch_max: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # messages per POST (1: no batch)
    status: Mapped[str] = mapped_column(String(16), default="active")
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed attempts
    failing_since_ms: Mapped[int | None] = mapped_column(BigInteger)  # first failure since the last success
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(CellBase):
    """One message in the persistent push queue: pending until delivered (then it leaves the queue: no device data is
    kept for what the subscriber has), or dead (the dead-letter list)."""

    __tablename__ = "app_webhook_deliveries"
    __table_args__ = (Index("ix_app_webhook_deliveries_due", "status", "next_at"),)
    __privacy__ = {**not_personal("id", "webhook_id", "event_type", "status", "attempts", "last_error"),
                   "did": DEVICE_ID, "payload": DEVICE_DATA, "created_ms": TIMESTAMP, "next_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the webhook-id (idempotency key)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("app_webhooks.id", ondelete="CASCADE"), index=True)
    did: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[int] = mapped_column(BigInteger)  # unix ms of the next attempt
    created_ms: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)


class PushOutbox(CellBase):
    """A device change committed by ingest in the same transaction as the change itself (a transactional outbox):
    the delivery loop turns it into one queued message per subscription that wants it, and deletes it, in one
    transaction, so a crash between the ingest commit and the fan-out loses no push."""

    __tablename__ = "app_push_outbox"
    __privacy__ = {**not_personal("id", "event_type"), "did": DEVICE_ID, "data": DEVICE_DATA,
                   "created_ms": TIMESTAMP}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # commit order
    did: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JsonType)  # the payload's `data` as the webhook will carry it
    created_ms: Mapped[int] = mapped_column(BigInteger)
