"""Domain events of the notify context (published after the transaction that stored the notification)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NotificationCreated:
    """A notification was stored for a user; the console and the user's apps are told."""

    cell: str
    user_id: str
    did: str | None
    notification: dict[str, Any]
