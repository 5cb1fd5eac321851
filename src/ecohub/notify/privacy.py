"""Notify's part of the data map: a user's notifications (exported, deleted on erasure)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from ecohub.notify.models import Notification
from ecohub.privacy.registry import DataRegistry, StoreHandler


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def register(registry: DataRegistry) -> None:
    """Register notify's store."""
    registry.add(StoreHandler(_t(Notification), "notify", lambda sc: Notification.user_id == sc.user_id))
