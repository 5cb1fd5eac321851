"""Tables of the home context: service tokens (global plane); users, homes, sharing and bindings (cell plane)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import (
    COUNTRY,
    CREDENTIAL,
    DEVICE_ID,
    EMAIL,
    EMAIL_HASH,
    LANGUAGE,
    SEALED_FREE_TEXT,
    TIMESTAMP,
    USER_ID,
    not_personal,
)
from ecohub.store.db import CellBase, GlobalBase, utcnow


class ServiceToken(GlobalBase):
    """A bearer token of an operator or a partner; only its hash is stored."""

    __tablename__ = "service_tokens"
    __privacy__ = not_personal("id", "token_hash", "role", "partner_id", "label", "created_at", "expires_at",
                               "revoked_at", why="credentials of staff and partner systems, no end-user data")

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class User(CellBase):
    """An end user, stored only in the cell of their declared country; email found by a keyed hash."""

    __tablename__ = "users"
    __privacy__ = {"id": USER_ID, "email_hash": EMAIL_HASH, "email": EMAIL, "password_hash": CREDENTIAL,
                   "country": COUNTRY, "cell": COUNTRY, "created_at": TIMESTAMP, "locale": LANGUAGE}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email: Mapped[str] = mapped_column(Text)  # personal data: read and written only through accounts.EmailVault
    password_hash: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    cell: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locale: Mapped[str | None] = mapped_column(String(16))  # the console's language (None: the browser's)


class UserToken(CellBase):
    """A user access token (sha256 only), in the user's cell; the token text names the cell."""

    __tablename__ = "user_tokens"
    __privacy__ = {**not_personal("id"), "token_hash": USER_ID, "user_id": USER_ID, "created_at": TIMESTAMP,
                   "expires_at": TIMESTAMP, "revoked_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Home(CellBase):
    """A home owned by one user; devices are bound to it, other users are invited into it."""

    __tablename__ = "homes"
    __privacy__ = {"id": USER_ID, "owner_id": USER_ID, "name": SEALED_FREE_TEXT, "created_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)  # sealed with the home owner's key (privacy.sealing)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Room(CellBase):
    """A room of a home."""

    __tablename__ = "rooms"
    __privacy__ = {"id": USER_ID, "home_id": USER_ID, "name": SEALED_FREE_TEXT, "created_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)  # sealed with the home owner's key (privacy.sealing)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HomeMember(CellBase):
    """A user invited into a home as member (control) or guest (view), optionally until a time."""

    __tablename__ = "home_members"
    __privacy__ = {"home_id": USER_ID, "user_id": USER_ID, "role": USER_ID, "invited_by": USER_ID,
                   "created_at": TIMESTAMP, "expires_at": TIMESTAMP}

    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Binding(CellBase):
    """A device claimed into a home; `bound_ms` starts the epoch whose twin and telemetry the home may see."""

    __tablename__ = "bindings"
    __privacy__ = {"did": DEVICE_ID, "home_id": USER_ID, "room_id": USER_ID, "name": SEALED_FREE_TEXT,
                   "bound_by": USER_ID, "bound_ms": TIMESTAMP}

    did: Mapped[str] = mapped_column(String(40), primary_key=True)  # one home per device, enforced by the key
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id"), index=True)
    room_id: Mapped[str | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(Text, default="")  # sealed with the home owner's key
    bound_by: Mapped[str] = mapped_column(String(32))
    bound_ms: Mapped[int] = mapped_column(BigInteger)


class BindCode(CellBase):
    """A one-time claim code of a device (fresh from the device, or a printed one after its first use)."""

    __tablename__ = "bind_codes"
    __table_args__ = (Index("ix_bind_codes_did_hash", "did", "code_hash"),)
    __privacy__ = not_personal("id", "did", "code_hash", "kind", "created_at", "expires_at", "used_at",
                               why="one-time claim codes of a device (hashes), not linked to a person")

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    did: Mapped[str] = mapped_column(String(40))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(16))  # "fresh" (device-issued) or "printed" (provisioning label)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(CellBase):
    """A password-reset token of a user (sha256 only), single-use and expiring, in the user's cell."""

    __tablename__ = "password_resets"
    __privacy__ = {**not_personal("id"), "user_id": USER_ID, "token_hash": CREDENTIAL, "created_at": TIMESTAMP,
                   "expires_at": TIMESTAMP, "used_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeviceShare(CellBase):
    """One device shared by its home's owner with another person (by e-mail) as member (control) or guest (view),
    optionally until a time. Pending until an account of this cell has that e-mail (`user_id` set on first use)."""

    __tablename__ = "device_shares"
    __table_args__ = (Index("ix_device_shares_did_email_hash", "did", "email_hash", unique=True),)
    __privacy__ = {**not_personal("id"), "did": DEVICE_ID, "owner_id": USER_ID, "user_id": USER_ID,
                   "email_hash": EMAIL_HASH, "email": SEALED_FREE_TEXT, "role": USER_ID,
                   "created_at": TIMESTAMP, "expires_at": TIMESTAMP}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    did: Mapped[str] = mapped_column(String(40))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    email: Mapped[str] = mapped_column(Text)  # the invitee's address, sealed with the owner's key
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Favourite(CellBase):
    """A device a user marked as a favourite (shown first on their home page, on every browser and app)."""

    __tablename__ = "favourites"
    __privacy__ = {"user_id": USER_ID, "did": DEVICE_ID, "created_ms": TIMESTAMP}

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    did: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
