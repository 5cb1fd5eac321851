"""Who is calling: the caller's role and scope, shared by every context (decided once, in the services)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ecohub.errors import ErrorCode, Forbidden


class Role(StrEnum):
    """Who a caller is."""

    OPERATOR = "operator"
    PARTNER = "partner"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: role, and the partner or user it is scoped to."""

    role: Role
    subject: str
    partner_id: str | None = None
    cell: str | None = None

    @property
    def actor(self) -> str:
        """How the caller appears in histories and the audit log."""
        return f"{self.role}:{self.subject}"


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
