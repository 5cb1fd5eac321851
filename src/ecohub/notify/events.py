"""Domain events of the notify context (published after the transaction that stored the notification)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NotificationCreated:
    """A notification was stored for a user; the console and the user's apps are told.

    `notification` is the stored view (English text, code, params); `localized` the same in the user's account
    language `locale` (None: they chose none, English)."""

    cell: str
    user_id: str
    did: str | None
    notification: dict[str, Any]
    locale: str | None = None
    localized: dict[str, Any] | None = None
