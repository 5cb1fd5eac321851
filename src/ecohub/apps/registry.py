"""Use cases of app registration: partners register OAuth clients; the operator suspends and resumes them."""

from __future__ import annotations

import builtins
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ecohub.apps.domain import (
    CLIENT_PREFIX,
    DEFAULT_SCOPES,
    SECRET_PREFIX,
    check_redirect_uri,
    parse_scopes,
    sha256,
)
from ecohub.apps.models import App
from ecohub.auth import Principal, Role, check_partner, partner_filter
from ecohub.errors import ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.netguard import UrlPolicy
from ecohub.store import Databases, aware, utcnow


@dataclass(frozen=True, slots=True)
class Client:
    """An app as the OAuth server sees it (a value: no session attached)."""

    client_id: str
    name: str
    secret_hash: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    status: str
    owner_partner: str | None
    privacy_policy_url: str | None
    rpm_limit: int
    pushes_per_day: int

    @property
    def active(self) -> bool:
        """Suspended apps get no codes or tokens, and their tokens stop working."""
        return self.status == "active"

    def secret_matches(self, secret: str) -> bool:
        """Constant-time check of a presented client secret against the stored hash."""
        return hmac.compare_digest(self.secret_hash, sha256(secret))

    def view(self) -> dict[str, Any]:
        """The app as the API shows it (never the secret or its hash)."""
        return {"client_id": self.client_id, "app_id": self.client_id, "name": self.name,
                "redirect_uris": list(self.redirect_uris), "scopes": list(self.scopes), "status": self.status,
                "owner_partner": self.owner_partner, "privacy_policy_url": self.privacy_policy_url,
                "limits": {"requests_per_minute": self.rpm_limit, "pushes_per_day": self.pushes_per_day}}


def _client(row: App) -> Client:
    return Client(row.id, row.name, row.secret_hash, tuple(row.redirect_uris), tuple(row.scopes), row.status,
                  row.owner_partner, row.privacy_policy_url, row.rpm_limit, row.pushes_per_day)


class AppRegistry:
    """Registered apps, in the global plane (they hold no end-user data)."""

    def __init__(self, dbs: Databases, *, url_policy: UrlPolicy, rpm_limit: int = 600,
                 pushes_per_day: int = 100_000) -> None:
        self.dbs = dbs
        self.url_policy = url_policy
        self.rpm_limit = rpm_limit
        self.pushes_per_day = pushes_per_day

    def create(self, *, name: str, redirect_uris: builtins.list[str], scopes: builtins.list[str] | None = None,
               privacy_policy_url: str | None = None, partner_id: str | None = None,
               caller: Principal | None = None) -> dict[str, Any]:
        """Register an app; the client secret is returned once and only its hash is kept.

        A partner registers apps for itself; the operator (or the CLI) for a partner it names, or for none."""
        if caller is not None and caller.role not in (Role.OPERATOR, Role.PARTNER):
            raise Forbidden("apps are registered by partners and the operator", code=ErrorCode.WRONG_ROLE)
        if caller is not None and caller.role == Role.PARTNER:
            partner_id = caller.partner_id
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput("an app name must be 1 to 100 characters", code=ErrorCode.INVALID_NAME)
        if not redirect_uris:
            raise InvalidInput("give at least one redirect URI", code=ErrorCode.INVALID_REDIRECT_URI)
        uris = list(dict.fromkeys(check_redirect_uri(u) for u in redirect_uris))
        if len(uris) > 10:
            raise InvalidInput("at most 10 redirect URIs", code=ErrorCode.INVALID_REDIRECT_URI)
        if privacy_policy_url:
            if not privacy_policy_url.startswith("https://"):
                raise InvalidInput("the privacy-policy URL must be https://", code=ErrorCode.UNSAFE_URL)
            self.url_policy.check(privacy_policy_url)  # public addresses only (the consent page links to it)
        client_id = CLIENT_PREFIX + secrets.token_hex(10)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row = App(id=client_id, name=name, owner_partner=partner_id, created_by=caller.actor if caller else "cli",
                  secret_hash=sha256(secret), redirect_uris=uris, scopes=parse_scopes(scopes or list(DEFAULT_SCOPES)),
                  privacy_policy_url=privacy_policy_url or None, status="active", rpm_limit=self.rpm_limit,
                  pushes_per_day=self.pushes_per_day)
        with self.dbs.global_session() as s:
            s.add(row)
            view = _client(row).view()
        return {**view, "client_secret": secret}

    def client(self, client_id: str) -> Client | None:
        """The app with this client id, or None."""
        with self.dbs.global_session() as s:
            row = s.get(App, client_id)
            return _client(row) if row is not None else None

    def get(self, client_id: str, *, caller: Principal | None = None) -> Client:
        """An app its owner (or the operator) may see."""
        found = self.client(client_id)
        if found is None:
            raise NotFound(f"no app {client_id!r}", code=ErrorCode.UNKNOWN_APP)
        if caller is not None and caller.role not in (Role.OPERATOR, Role.PARTNER):
            raise Forbidden("apps are managed by their partner and the operator", code=ErrorCode.WRONG_ROLE)
        try:
            check_partner(caller, found.owner_partner)
        except Forbidden:
            raise NotFound(f"no app {client_id!r}", code=ErrorCode.UNKNOWN_APP) from None
        return found

    def list(self, *, caller: Principal | None = None) -> builtins.list[dict[str, Any]]:
        """Apps, newest first (a partner: its own)."""
        q = select(App).order_by(App.created_at.desc())
        partner = partner_filter(caller, None)
        if partner is not None:
            q = q.where(App.owner_partner == partner)
        with self.dbs.global_session() as s:
            return [{**_client(r).view(), "created_at": aware(r.created_at).isoformat()} for r in s.scalars(q)]

    def names(self, client_ids: builtins.list[str]) -> dict[str, Client]:
        """The apps among `client_ids` (for pages listing a user's grants)."""
        with self.dbs.global_session() as s:
            return {r.id: _client(r) for r in s.scalars(select(App).where(App.id.in_(client_ids)))}

    def suspend(self, client_id: str, *, reason: str = "", caller: Principal | None = None) -> dict[str, Any]:
        """Suspend an app (operator): no new authorizations, and every token it holds stops working at once."""
        self._operator(caller)
        with self.dbs.global_session() as s:
            row = s.get(App, client_id)
            if row is None:
                raise NotFound(f"no app {client_id!r}", code=ErrorCode.UNKNOWN_APP)
            row.status, row.suspended_at, row.suspended_reason = "suspended", utcnow(), reason[:200] or None
            return _client(row).view()

    def resume(self, client_id: str, *, caller: Principal | None = None) -> dict[str, Any]:
        """Lift a suspension (operator)."""
        self._operator(caller)
        with self.dbs.global_session() as s:
            row = s.get(App, client_id)
            if row is None:
                raise NotFound(f"no app {client_id!r}", code=ErrorCode.UNKNOWN_APP)
            row.status, row.suspended_at, row.suspended_reason = "active", None, None
            return _client(row).view()

    def set_limits(self, client_id: str, *, requests_per_minute: int | None = None,
                   pushes_per_day: int | None = None, caller: Principal | None = None) -> dict[str, Any]:
        """Change an app's documented quotas (operator)."""
        self._operator(caller)
        for value in (requests_per_minute, pushes_per_day):
            if value is not None and not 1 <= value <= 10**9:
                raise InvalidInput("a quota must be between 1 and 10^9", code=ErrorCode.INVALID_LIMIT)
        with self.dbs.global_session() as s:
            row = s.get(App, client_id)
            if row is None:
                raise NotFound(f"no app {client_id!r}", code=ErrorCode.UNKNOWN_APP)
            if requests_per_minute is not None:
                row.rpm_limit = requests_per_minute
            if pushes_per_day is not None:
                row.pushes_per_day = pushes_per_day
            return _client(row).view()

    @staticmethod
    def _operator(caller: Principal | None) -> None:
        if caller is not None and caller.role != Role.OPERATOR:
            raise Forbidden("only the operator suspends or resumes apps", code=ErrorCode.WRONG_ROLE)
