"""Twin's part of the data map: twins and their (sealed) reported values, and which devices are online."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ecohub.privacy.registry import DataRegistry, ReportedValue, SealedColumn, StoreHandler
from ecohub.privacy.sealing import twin_aad
from ecohub.twin.models import Twin, TwinProperty

CHUNK = 5000  # dids per IN list (SQLite caps bound parameters)


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _chunks(dids: Sequence[str]) -> list[list[str]]:
    wanted = list(dids)
    return [wanted[i:i + CHUNK] for i in range(0, len(wanted), CHUNK)]


def online(s: Session, dids: Sequence[str]) -> set[str]:
    """The devices among `dids` whose twin says online."""
    return {did for part in _chunks(dids)
            for did in s.scalars(select(Twin.did).where(Twin.did.in_(part), Twin.online.is_(True)))}


def reported(s: Session, dids: Sequence[str]) -> list[ReportedValue]:
    """The last reported values of the twins of `dids`, as stored (sealed when bound)."""
    return [ReportedValue(p.did, p.key, p.value, p.subject, p.sealed, p.ts) for part in _chunks(dids)
            for p in s.scalars(select(TwinProperty).where(TwinProperty.did.in_(part)))]


def register(registry: DataRegistry) -> None:
    """Register twin's stores and the twin facts privacy asks of it."""
    registry.add(
        StoreHandler(_t(Twin), "twin", lambda sc: sc.of_devices(Twin.did)),
        StoreHandler(_t(TwinProperty), "twin", lambda sc: sc.of_devices(TwinProperty.did),
                     sealed=SealedColumn("value", ("did", "key"), twin_aad)),
    )
    registry.lookups.online = online
    registry.lookups.reported = reported
