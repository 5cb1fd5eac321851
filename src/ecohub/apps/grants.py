"""Use cases of grants: a user's consent (scopes and which devices), codes and tokens in the user's cell, app tokens
turned into principals, and the user's list of granted apps."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from ecohub.apps.domain import ACCESS_PREFIX, REFRESH_PREFIX, cell_of_token, sha256
from ecohub.apps.models import AppGrant, AppGrantDevice, AppToken, AuthCode
from ecohub.apps.registry import AppRegistry
from ecohub.auth import Principal, Role
from ecohub.errors import ErrorCode, Forbidden, InvalidInput, NotFound, Unauthorized
from ecohub.home.domain import HomeRole
from ecohub.home.homes import HomeService
from ecohub.store import Databases, aware, utcnow


@dataclass(frozen=True, slots=True)
class GrantUser:
    """The resource owner of an OAuth request: a user of a cell and the grant they gave (Authlib's `user`)."""

    cell: str
    user_id: str
    grant_id: str

    def get_user_id(self) -> str:
        """Authlib asks the user for its id."""
        return self.user_id


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A stored authorization code, as Authlib's AuthorizationCodeMixin wants it."""

    id: str
    cell: str
    app_id: str
    grant_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored access/refresh token pair, as Authlib's TokenMixin wants it."""

    id: str
    cell: str
    app_id: str
    grant_id: str
    user_id: str
    family: str
    scope: str
    issued_at: datetime
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    revoked: bool
    grant_revoked: bool

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.app_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked or self.grant_revoked

    def get_user(self) -> GrantUser:
        return GrantUser(self.cell, self.user_id, self.grant_id)


def _record(cell: str, row: AppToken, grant: AppGrant) -> TokenRecord:
    refresh = aware(row.refresh_expires_at) if row.refresh_expires_at else None
    return TokenRecord(row.id, cell, row.app_id, row.grant_id, grant.user_id, row.family, row.scope,
                       aware(row.issued_at), aware(row.access_expires_at), refresh, row.revoked_at is not None,
                       grant.revoked_at is not None)


class GrantService:
    """Grants, codes and tokens of apps, each in the cell of the user who granted them."""

    def __init__(self, dbs: Databases, registry: AppRegistry, homes: HomeService) -> None:
        self.dbs = dbs
        self.registry = registry
        self.homes = homes
        self.on_revoked: list[Callable[[str, str], object]] = []  # (cell, grant_id): drop push subscriptions etc.

    # -- consent ----------------------------------------------------------------------------------------------
    def grantable(self, p: Principal) -> list[dict[str, Any]]:
        """The homes the user owns with their devices: what the consent screen offers to grant, one by one."""
        if p.role != Role.USER:
            raise Forbidden("only the user themself grants apps access", code=ErrorCode.WRONG_ROLE)
        homes = {h["home_id"]: {**h, "devices": []} for h in self.homes.of_user(p) if h["role"] == "owner"}
        accesses = [a for a in self.homes.accessible_devices(p) if a.home_id in homes]
        names = self.homes.device_names(self.homes.cell_of(p), [a.did for a in accesses])
        for a in accesses:
            homes[a.home_id]["devices"].append({"did": a.did, "name": names.get(a.did) or a.did})
        return list(homes.values())

    def approve(self, p: Principal, client_id: str, scopes: list[str], dids: list[str]) -> GrantUser:
        """Record the user's consent: these scopes on these devices (each one the user owns); one live grant per app
        and user, replaced by a new consent."""
        if p.role != Role.USER or not p.cell:
            raise Forbidden("only the user themself grants apps access", code=ErrorCode.WRONG_ROLE)
        client = self.registry.client(client_id)
        if client is None or not client.active:
            raise NotFound(f"no active app {client_id!r}", code=ErrorCode.UNKNOWN_APP)
        wanted = list(dict.fromkeys(dids))
        if not wanted:
            raise InvalidInput("choose at least one device to share with the app", code=ErrorCode.DEVICE_NOT_GRANTABLE)
        for did in wanted:
            try:
                self.homes.device_access(p, did, HomeRole.OWNER)
            except (NotFound, Forbidden) as err:
                raise Forbidden(f"device {did} is not yours to grant (only devices of homes you own)",
                                code=ErrorCode.DEVICE_NOT_GRANTABLE) from err
        with self.dbs.cell_session(p.cell) as s:
            grant = s.scalar(select(AppGrant).where(AppGrant.user_id == p.subject, AppGrant.app_id == client_id,
                                                    AppGrant.revoked_at.is_(None)))
            if grant is None:
                grant = AppGrant(id=secrets.token_hex(12), app_id=client_id, user_id=p.subject, scopes=scopes)
                s.add(grant)
                s.flush()
            else:
                grant.scopes, grant.updated_at = scopes, utcnow()
                for old in s.scalars(select(AppGrantDevice).where(AppGrantDevice.grant_id == grant.id)):
                    s.delete(old)
                s.flush()
            s.add_all(AppGrantDevice(grant_id=grant.id, did=did) for did in wanted)
            return GrantUser(p.cell, p.subject, grant.id)

    def of_user(self, p: Principal) -> list[dict[str, Any]]:
        """The apps the user granted access, with scopes and devices (their own page lists and revokes them)."""
        cell = self.homes.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            grants = s.scalars(select(AppGrant).where(AppGrant.user_id == p.subject, AppGrant.revoked_at.is_(None))
                               .order_by(AppGrant.created_at)).all()
            devices: dict[str, list[str]] = {g.id: [] for g in grants}
            if grants:
                for row in s.scalars(select(AppGrantDevice).where(AppGrantDevice.grant_id.in_(list(devices)))):
                    devices[row.grant_id].append(row.did)
            out = [(g.id, g.app_id, list(g.scopes), aware(g.created_at).isoformat()) for g in grants]
        apps = self.registry.names([a for _, a, _, _ in out])
        names = self.homes.device_names(cell, [d for ds in devices.values() for d in ds])
        return [{"grant_id": gid, "app_id": app_id, "app": apps[app_id].name if app_id in apps else app_id,
                 "status": apps[app_id].status if app_id in apps else "deleted", "scopes": scopes, "since": since,
                 "devices": [{"did": d, "name": names.get(d) or d} for d in devices[gid]]}
                for gid, app_id, scopes, since in out]

    def revoke(self, p: Principal, grant_id: str) -> None:
        """The user withdraws an app's access: the grant and every token issued under it stop working at once."""
        cell = self.homes.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            grant = s.get(AppGrant, grant_id)
            if grant is None or grant.user_id != p.subject or grant.revoked_at is not None:
                raise NotFound(f"no granted app {grant_id!r}", code=ErrorCode.UNKNOWN_GRANT)
            grant.revoked_at = utcnow()
            s.execute(update(AppToken).where(AppToken.grant_id == grant_id, AppToken.revoked_at.is_(None))
                      .values(revoked_at=utcnow()))
        for hook in self.on_revoked:
            hook(cell, grant_id)

    # -- authorization codes (called by the OAuth server) -------------------------------------------------------
    def save_code(self, user: GrantUser, code: str, *, app_id: str, redirect_uri: str, scope: str,
                  challenge: str, method: str, ttl_s: int) -> None:
        """Store a fresh code (hash only), bound to the grant, the client, the redirect URI and the PKCE challenge."""
        with self.dbs.cell_session(user.cell) as s:
            s.add(AuthCode(id=secrets.token_hex(12), code_hash=sha256(code), grant_id=user.grant_id, app_id=app_id,
                           redirect_uri=redirect_uri, scope=scope, code_challenge=challenge,
                           code_challenge_method=method, expires_at=utcnow() + timedelta(seconds=ttl_s)))

    def take_code(self, code: str, app_id: str) -> CodeRecord | None:
        """Redeem a code once: None when unknown, expired, another client's, or already used — a reused code also
        revokes every token issued from it (RFC 6749 §4.1.2)."""
        cell, _, _ = code.partition(".")
        if cell not in self.dbs.cells:
            return None
        with self.dbs.cell_session(cell) as s:
            row = s.scalar(select(AuthCode).where(AuthCode.code_hash == sha256(code)))
            if row is None or row.app_id != app_id:
                return None
            taken = s.execute(update(AuthCode).where(AuthCode.id == row.id, AuthCode.used_at.is_(None))
                              .values(used_at=utcnow())).rowcount  # type: ignore[attr-defined]
            if not taken:
                s.execute(update(AppToken).where(AppToken.family == row.id, AppToken.revoked_at.is_(None))
                          .values(revoked_at=utcnow()))
                return None
            grant = s.get(AppGrant, row.grant_id)
            if aware(row.expires_at) <= utcnow() or grant is None or grant.revoked_at is not None:
                return None
            return CodeRecord(row.id, cell, row.app_id, row.grant_id, grant.user_id, row.redirect_uri, row.scope,
                              row.code_challenge, row.code_challenge_method)

    # -- tokens ---------------------------------------------------------------------------------------------------
    def save_token(self, user: GrantUser, token: dict[str, Any], *, app_id: str, family: str) -> None:
        """Store an issued pair (hashes only) in the family of the code it descends from."""
        now = utcnow()
        refresh = token.get("refresh_token")
        with self.dbs.cell_session(user.cell) as s:
            s.add(AppToken(id=secrets.token_hex(12), access_hash=sha256(token["access_token"]),
                           refresh_hash=sha256(refresh) if refresh else None, grant_id=user.grant_id, app_id=app_id,
                           family=family, scope=token.get("scope", ""), issued_at=now,
                           access_expires_at=now + timedelta(seconds=int(token["expires_in"])),
                           refresh_expires_at=now + timedelta(seconds=int(token["refresh_expires_in"]))
                           if refresh else None))

    def _find(self, token: str, *, refresh: bool) -> tuple[str, AppToken, AppGrant] | None:
        cell = cell_of_token(token, REFRESH_PREFIX if refresh else ACCESS_PREFIX)
        if cell is None or cell not in self.dbs.cells:
            return None
        column = AppToken.refresh_hash if refresh else AppToken.access_hash
        with self.dbs.cell_session(cell) as s:
            row = s.scalar(select(AppToken).where(column == sha256(token)))
            grant = s.get(AppGrant, row.grant_id) if row is not None else None
            if row is None or grant is None:
                return None
            s.expunge_all()
            return cell, row, grant

    def query_token(self, token: str, hint: str | None = None) -> TokenRecord | None:
        """An access or refresh token by its text (revocation and introspection)."""
        found = self._find(token, refresh=token.startswith(REFRESH_PREFIX))
        return _record(*found) if found else None

    def refresh_record(self, token: str) -> TokenRecord | None:
        """A refresh token that may be redeemed; presenting one that was already rotated revokes its whole family
        (a stolen copy and the real one both stop working)."""
        found = self._find(token, refresh=True)
        if found is None:
            return None
        cell, row, grant = found
        if row.rotated_at is not None:
            self.revoke_family(cell, row.family)
            return None
        record = _record(cell, row, grant)
        if record.is_revoked() or (record.refresh_expires_at and record.refresh_expires_at <= utcnow()):
            return None
        return record

    def rotate(self, record: TokenRecord) -> None:
        """Retire a refresh token after its successor was issued; losing a race with a reuse revokes the family."""
        with self.dbs.cell_session(record.cell) as s:
            done = s.execute(update(AppToken).where(AppToken.id == record.id, AppToken.rotated_at.is_(None))
                             .values(rotated_at=utcnow())).rowcount  # type: ignore[attr-defined]
        if not done:
            self.revoke_family(record.cell, record.family)

    def revoke_family(self, cell: str, family: str) -> None:
        """Revoke every token descending from one authorization code."""
        with self.dbs.cell_session(cell) as s:
            s.execute(update(AppToken).where(AppToken.family == family, AppToken.revoked_at.is_(None))
                      .values(revoked_at=utcnow()))

    def revoke_token(self, record: TokenRecord) -> None:
        """RFC 7009: revoke this token and the rest of its family (the refresh token's access tokens with it)."""
        self.revoke_family(record.cell, record.family)

    def logout(self, access_token: str) -> None:
        """An app signs its token out (`POST /auth/logout`): the token and its family are revoked."""
        record = self.query_token(access_token)
        if record is not None:
            self.revoke_token(record)

    def authenticate(self, token: str) -> Principal:
        """The principal behind an app access token: the user, the app, the token's scopes within the grant's, and
        the granted devices — read on each request, so revocation and suspension act at once."""
        found = self._find(token, refresh=False)
        if found is None:
            raise Unauthorized("unknown token", code=ErrorCode.INVALID_TOKEN)
        cell, row, grant = found
        if row.revoked_at is not None or grant.revoked_at is not None:
            raise Unauthorized("token revoked", code=ErrorCode.TOKEN_REVOKED)
        if aware(row.access_expires_at) <= utcnow():
            raise Unauthorized("token expired", code=ErrorCode.TOKEN_EXPIRED)
        client = self.registry.client(row.app_id)
        if client is None or not client.active:
            raise Unauthorized("the app is suspended", code=ErrorCode.APP_SUSPENDED)
        with self.dbs.cell_session(cell) as s:
            dids = frozenset(s.scalars(select(AppGrantDevice.did).where(AppGrantDevice.grant_id == grant.id)))
        scopes = frozenset(row.scope.split()) & frozenset(grant.scopes)
        return Principal(Role.APP, grant.user_id, cell=cell, app_id=row.app_id, scopes=scopes, dids=dids,
                         grant_id=grant.id)

    def grants_of_app(self, app_id: str) -> list[tuple[str, str]]:
        """(cell, grant id) of every live grant of an app (push fan-out, usage)."""
        out = []
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                out += [(cell, g) for g in s.scalars(select(AppGrant.id).where(AppGrant.app_id == app_id,
                                                                              AppGrant.revoked_at.is_(None)))]
        return out
