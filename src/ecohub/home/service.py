"""Use cases of the home context: service tokens, and the wiring of accounts, homes, binding and control."""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select

from ecohub.auth import Principal, Role, check_partner, partner_filter
from ecohub.bus import EventBus
from ecohub.connect.commands import CommandLink
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import ErrorCode, InvalidInput, NotFound, Unauthorized
from ecohub.home.accounts import AccountService
from ecohub.home.binding import BindingService
from ecohub.home.control import UserDeviceService
from ecohub.home.favourites import FavouriteService
from ecohub.home.homes import HomeService
from ecohub.home.mail import Mailer
from ecohub.home.models import ServiceToken
from ecohub.home.passwords import PasswordService
from ecohub.privacy.crypto import TextCipher
from ecohub.privacy.sealing import PayloadSealer
from ecohub.settings import MailSettings
from ecohub.store import Databases, aware, utcnow
from ecohub.twin.service import TwinService

TOKEN_PREFIX = "eht_"
_TOKEN_Q = select(ServiceToken.id, ServiceToken.role, ServiceToken.partner_id, ServiceToken.expires_at,
                  ServiceToken.revoked_at).where(ServiceToken.token_hash == bindparam("token_hash"))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    """Bearer tokens of operators and partners (high-entropy, stored only as sha256)."""

    def __init__(self, dbs: Databases, *, default_ttl_s: int = 90 * 24 * 3600) -> None:
        self.dbs = dbs
        self.default_ttl_s = default_ttl_s

    def create(self, *, role: str, partner_id: str | None = None, label: str = "",
               ttl_s: int | None = None) -> dict[str, str | None]:
        """Mint a token; the clear text is returned once and never stored. Every token expires (the settings'
        default unless `ttl_s` is given)."""
        try:
            r = Role(role)
        except ValueError as err:
            raise InvalidInput(f"unknown role {role!r} (operator or partner)", code=ErrorCode.INVALID_ROLE) from err
        if r == Role.USER:
            raise InvalidInput("user tokens come from sign-in, not from `token create`", code=ErrorCode.INVALID_ROLE)
        if r == Role.PARTNER and not partner_id:
            raise InvalidInput("a partner token needs --partner", code=ErrorCode.PARTNER_REQUIRED)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(8)
        if ttl_s is not None and ttl_s <= 0:
            raise InvalidInput("a token's lifetime must be positive", code=ErrorCode.INVALID_EXPIRY)
        expires = utcnow() + timedelta(seconds=ttl_s or self.default_ttl_s)
        with self.dbs.global_session() as s:
            s.add(ServiceToken(id=token_id, token_hash=_hash(token), role=r, partner_id=partner_id, label=label,
                               expires_at=expires))
        return {"token_id": token_id, "token": token, "role": r.value, "partner_id": partner_id,
                "expires_at": expires.isoformat() if expires else None}

    def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token; refuse unknown, expired and revoked tokens."""
        if not token.startswith(TOKEN_PREFIX):
            raise Unauthorized("not an ecohub token", code=ErrorCode.INVALID_TOKEN)
        with self.dbs.global_session() as s:  # every API request: columns by a statement built once, no ORM object
            row = s.execute(_TOKEN_Q, {"token_hash": _hash(token)}).first()
        if row is None:
            raise Unauthorized("unknown token", code=ErrorCode.INVALID_TOKEN)
        if row.revoked_at is not None:
            raise Unauthorized("token revoked", code=ErrorCode.TOKEN_REVOKED)
        expires = row.expires_at
        if expires is not None and expires.replace(tzinfo=expires.tzinfo or UTC) < utcnow():
            raise Unauthorized("token expired", code=ErrorCode.TOKEN_EXPIRED)
        return Principal(Role(row.role), row.id, row.partner_id)

    def revoke_secret(self, token: str) -> None:
        """Revoke the token with this clear text (a console sign-out revokes its session token)."""
        with self.dbs.global_session() as s:
            row = s.scalar(select(ServiceToken).where(ServiceToken.token_hash == _hash(token)))
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()

    def list(self, *, caller: Principal | None = None, include_inactive: bool = False) -> builtins.list[dict[str, Any]]:
        """Tokens without their secrets, newest first (a partner caller: its own); active ones unless asked."""
        q = select(ServiceToken).order_by(ServiceToken.created_at.desc())
        partner_id = partner_filter(caller, None)
        if partner_id is not None:
            q = q.where(ServiceToken.partner_id == partner_id)
        now = utcnow()
        with self.dbs.global_session() as s:
            rows = [_token_view(r, now) for r in s.scalars(q)]
        return rows if include_inactive else [r for r in rows if r["status"] == "active"]

    def revoke(self, token_id: str, *, caller: Principal | None = None) -> None:
        """Revoke a token; it is refused from the next request on (a partner caller: only its own)."""
        with self.dbs.global_session() as s:
            row = s.get(ServiceToken, token_id)
            if row is None:
                raise NotFound(f"no token {token_id!r}", code=ErrorCode.UNKNOWN_TOKEN)
            check_partner(caller, row.partner_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()


def _token_view(row: ServiceToken, now: datetime) -> dict[str, Any]:
    expires = aware(row.expires_at) if row.expires_at is not None else None
    status = "revoked" if row.revoked_at is not None else "expired" if expires and expires < now else "active"
    return {"token_id": row.id, "role": row.role, "partner_id": row.partner_id, "label": row.label,
            "created_at": aware(row.created_at).isoformat(), "expires_at": expires.isoformat() if expires else None,
            "revoked_at": aware(row.revoked_at).isoformat() if row.revoked_at else None, "status": status}


@dataclass
class HomeContext:
    """The end user's side, wired once: accounts, homes and sharing, binding, cross-brand control."""

    accounts: AccountService
    homes: HomeService
    bindings: BindingService
    devices: UserDeviceService
    passwords: PasswordService
    favourites: FavouriteService

    @classmethod
    def build(cls, dbs: Databases, bus: EventBus, *, devices: DeviceService, products: ProductService,
              twin: TwinService, sealer: PayloadSealer, secret_key: bytes, token_ttl_s: int,
              commands: CommandLink, mail: MailSettings | None = None, development: bool = True,
              public_url: str = "http://127.0.0.1:8080") -> HomeContext:
        """Wire the home context's services."""
        accounts = AccountService(dbs, secret_key=secret_key, token_ttl_s=token_ttl_s,
                                  cipher=TextCipher(dbs, sealer.keys))  # emails sealed with each subject's key
        homes = HomeService(dbs, accounts, bus, sealer)
        mail = mail or MailSettings()
        passwords = PasswordService(accounts, Mailer(mail, development=development),
                                    public_url=mail.public_url or public_url, reset_ttl_s=mail.reset_ttl_s)
        return cls(accounts=accounts, homes=homes, passwords=passwords, favourites=FavouriteService(dbs, homes),
                   bindings=BindingService(dbs, homes, devices, bus, secret_key=secret_key),
                   devices=UserDeviceService(homes, devices, products, twin, commands))
