"""Connect's part of the data map: commands, dead letters and the inbox of bound devices, and device facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.orm import Session

from ecohub.connect.models import Command, DeadLetter, Device, InboxEntry
from ecohub.privacy.registry import DataRegistry, Scope, StoreHandler


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _erase_commands(s: Session, sc: Scope) -> dict[str, Any]:
    """Delete the commands of the user's devices; de-identify the ones they sent to others' devices."""
    n = s.execute(delete(Command).where(sc.owned_epoch(Command.did, Command.created_ms))).rowcount  # type: ignore[attr-defined]
    m = s.execute(update(Command).where(Command.requested_by == sc.actor)  # type: ignore[attr-defined]
                  .values(requested_by="user:erased")).rowcount
    return {"deleted": n, "deidentified": m}


def makers(s: Session, dids: Sequence[str]) -> dict[str, str | None]:
    """did → the partner that made it, for the devices among `dids`."""
    return dict(s.execute(select(Device.did, Device.partner_id).where(Device.did.in_(list(dids)))).all())


def partner_devices(s: Session, partner_id: str) -> dict[str, str]:
    """did → model of every device of a partner in this cell."""
    return dict(s.execute(select(Device.did, Device.model).where(Device.partner_id == partner_id)).all())


def foreign_devices(s: Session, cell: str) -> list[dict[str, Any]]:
    """Residency findings: devices provisioned for another cell but stored in this one."""
    return [{"store": cell, "table": "devices", "column": "did", "subject_cell": None,
             "kind": "device of another cell", "subject": did}
            for did in s.scalars(select(Device.did).where(~Device.did.startswith(f"{cell}-")))]


def register(registry: DataRegistry) -> None:
    """Register connect's stores and the device facts privacy asks of it."""
    registry.add(
        StoreHandler(_t(Command), "connect", lambda sc: or_(sc.owned_epoch(Command.did, Command.created_ms),
                                                            Command.requested_by == sc.actor),
                     erase=_erase_commands),
        StoreHandler(_t(DeadLetter), "connect", lambda sc: sc.owned_epoch(DeadLetter.did, DeadLetter.received_ms)),
        StoreHandler(_t(InboxEntry), "connect", lambda sc: sc.owned_epoch(InboxEntry.did, InboxEntry.received_ms)),
    )
    registry.lookups.makers = makers
    registry.lookups.partner_devices = partner_devices
    registry.lookups.residency_findings.append(foreign_devices)
