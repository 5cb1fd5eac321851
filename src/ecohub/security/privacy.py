"""The security audit's part of the data map: connect records (source addresses), findings about devices."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, false

from ecohub.privacy.registry import DataRegistry, StoreHandler
from ecohub.security.models import ConnectRecord, Finding, FirmwareSeen, VulnerableFirmware


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def register(registry: DataRegistry) -> None:
    """Register the audit's stores: a user's devices' rows are exported and erased like their other device data."""
    registry.add(
        StoreHandler(_t(ConnectRecord), "security", lambda sc: sc.of_devices(ConnectRecord.did)),
        StoreHandler(_t(Finding), "security", lambda sc: sc.of_devices(Finding.subject)),
        StoreHandler(_t(FirmwareSeen), "security", lambda sc: sc.of_devices(FirmwareSeen.did)),
        # names only the operator staff who marked a version: no user's data
        StoreHandler(_t(VulnerableFirmware), "security", lambda sc: false()),
    )
