"""Who is calling: the caller's role and scope, shared by every context (decided once, in the services)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
