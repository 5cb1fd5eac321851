"""Telemetry's part of the data map: samples and device events of the user's devices, sealed with their key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, or_

from ecohub.privacy.registry import DataRegistry, SealedColumn, StoreHandler
from ecohub.privacy.sealing import event_aad, telemetry_aad
from ecohub.telemetry.models import DeviceEvent, Rollup, Sample
from ecohub.telemetry.rollup import rollup_aad


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def register(registry: DataRegistry) -> None:
    """Register telemetry's stores: samples, events and rollups of the user's devices from the time they bound them."""
    registry.add(
        StoreHandler(_t(Sample), "telemetry", lambda sc: sc.owned_epoch(Sample.did, Sample.ts),
                     sealed=SealedColumn("value", ("did", "key"), telemetry_aad)),
        StoreHandler(_t(DeviceEvent), "telemetry", lambda sc: sc.owned_epoch(DeviceEvent.did, DeviceEvent.ts),
                     sealed=SealedColumn("arguments", ("did", "siid", "eiid"), event_aad)),
        # a rollup is sealed per owner: theirs are the ones under their key (an hour may start before the binding)
        StoreHandler(_t(Rollup), "telemetry",
                     lambda sc: or_(Rollup.subject == sc.user_id, sc.owned_epoch(Rollup.did, Rollup.bucket)),
                     sealed=SealedColumn("stats", ("did", "key", "res", "bucket"), rollup_aad)),
    )
