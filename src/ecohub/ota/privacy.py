"""OTA's part of the data map: per-device update progress of a user's bound devices (in the device's cell)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from ecohub.ota.models import DeviceUpdate
from ecohub.privacy.registry import DataRegistry, StoreHandler


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def register(registry: DataRegistry) -> None:
    """Register ota's personal store: which device got which update, while a user owned it."""
    registry.add(StoreHandler(_t(DeviceUpdate), "ota",
                              lambda sc: sc.owned_epoch(DeviceUpdate.did, DeviceUpdate.updated_ms)))
