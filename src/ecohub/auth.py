"""Who is calling: the caller's role and scope, shared by every context (decided once, in the services)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ecohub.errors import ErrorCode, Forbidden, NotFound


class Role(StrEnum):
    """Who a caller is."""

    OPERATOR = "operator"
    PARTNER = "partner"
    USER = "user"
    APP = "app"  # a third-party app acting for one user, within the scopes and devices the user granted


class Scope(StrEnum):
    """What an app token may do (OAuth scopes); user tokens are not limited by them."""

    HOMES_READ = "homes:read"
    DEVICES_READ = "devices:read"
    DEVICES_CONTROL = "devices:control"
    TELEMETRY_READ = "telemetry:read"
    AUTOMATIONS_WRITE = "automations:write"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: role, and the partner or user it is scoped to."""

    role: Role
    subject: str
    partner_id: str | None = None
    cell: str | None = None
    app_id: str | None = None  # an app token: the app, its granted scopes and devices (subject: the user)
    scopes: frozenset[str] = frozenset()
    dids: frozenset[str] = frozenset()
    grant_id: str | None = None

    @property
    def actor(self) -> str:
        """How the caller appears in histories and the audit log."""
        if self.role == Role.APP:
            return f"app:{self.app_id}/user:{self.subject}"
        return f"{self.role}:{self.subject}"


def check_scope(caller: Principal | None, scope: Scope | None) -> None:
    """App tokens reach only what their scope allows (`None`: nothing an app may do); other callers pass."""
    if caller is None or caller.role != Role.APP:
        return
    if scope is None:
        raise Forbidden("app tokens cannot use this; only the user themself can", code=ErrorCode.APP_NOT_ALLOWED)
    if scope not in caller.scopes:
        raise Forbidden(f"this needs the scope {scope}; the app was granted {' '.join(sorted(caller.scopes))}",
                        code=ErrorCode.INSUFFICIENT_SCOPE)


def check_granted(caller: Principal | None, did: str) -> None:
    """An app token reaches only the devices the user granted it (others look unknown)."""
    if caller is not None and caller.role == Role.APP and did not in caller.dids:
        raise NotFound(f"device {did} was not granted to this app", code=ErrorCode.UNKNOWN_DEVICE)


USER_TOKEN_PREFIX = "ehu_"


def check_partner(caller: Principal | None, partner_id: str | None) -> None:
    """Partners act only on their own products and devices; operators, users' own checks and in-process callers
    (`None`: the CLI on the data dir, the hub itself) pass."""
    if caller is not None and caller.role == Role.PARTNER and partner_id != caller.partner_id:
        raise Forbidden("partners may act only on their own products and devices", code=ErrorCode.NOT_YOUR_PARTNER)


def partner_filter(caller: Principal | None, asked: str | None) -> str | None:
    """The partner a listing is limited to: a partner always sees only its own, others what they asked for."""
    if caller is not None and caller.role == Role.PARTNER:
        return caller.partner_id
    return asked
