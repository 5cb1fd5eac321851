"""Domain events of the home context (published after the transaction that produced them committed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceBound:
    """A user claimed a device into a home; data from `since_ms` on belongs to this binding."""

    did: str
    cell: str
    home_id: str
    since_ms: int


@dataclass(frozen=True, slots=True)
class DeviceUnbound:
    """A device left its home and its credentials were reset; the previous owner's data must not reach the next."""

    did: str
    cell: str
    home_id: str


@dataclass(frozen=True, slots=True)
class MembershipEnded:
    """A member or guest lost access to a home (revoked or left)."""

    home_id: str
    cell: str
    user_id: str


@dataclass(frozen=True, slots=True)
class HomeShared:
    """An owner gave a user access to a home (member or guest); the invitee can use it at once."""

    home_id: str
    cell: str
    user_id: str
    role: str
    by: str
