"""The push outbox: ingest writes the device changes that apps subscribed to in the same transaction as the changes
themselves; the delivery loop claims them (a DELETE … RETURNING, so two deliverers never take one row) and turns
each into queued messages in the same transaction. Nothing lives only in memory between the two."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from ecohub.apps.models import PushOutbox
from ecohub.connect.events import EventReported, OnlineChanged, PropertiesReported

OUTBOX: Table = PushOutbox.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Target:
    """A live subscription, as the fan-out keeps it in memory."""

    webhook_id: str
    app_id: str
    events: frozenset[str]


@dataclass(frozen=True, slots=True)
class Change:
    """One claimed outbox row: what a device did, as the webhook's `data` will carry it."""

    did: str
    kind: str
    data: dict[str, Any]
    created_ms: int


def push_item(e: Any) -> tuple[str, str, dict[str, Any]] | None:
    """(did, event type, data) of a domain event apps can subscribe to; None for the others."""
    if isinstance(e, PropertiesReported):
        return e.did, "device.properties", {"did": e.did, "ts": e.ts, "properties": e.values}
    if isinstance(e, EventReported):
        return e.did, "device.event", {"did": e.did, "ts": e.ts, "event": f"{e.siid}.{e.eiid}",
                                       "arguments": e.arguments}
    if isinstance(e, OnlineChanged):
        return e.did, "device.online", {"did": e.did, "ts": e.ts, "online": e.online}
    return None


def stage(s: Session, targets: dict[str, list[Target]], events: Iterable[Any], now_ms: int) -> int:
    """Insert the events some live subscription wants into the outbox, in the caller's transaction; → rows."""
    rows = []
    for e in events:
        item = push_item(e)
        if item is None:
            continue
        did, kind, data = item
        if any(kind in t.events for t in targets.get(did, ())):
            rows.append({"did": did, "event_type": kind, "data": data, "created_ms": now_ms})
    if rows:
        s.execute(OUTBOX.insert(), rows)  # Core executemany: no ORM bulk bookkeeping per row
    return len(rows)


def pending(s: Session) -> bool:
    """Whether anything waits in the outbox (a read: the caller claims in a fresh transaction)."""
    return s.scalar(select(PushOutbox.id).limit(1)) is not None


def claim(s: Session, limit: int) -> Sequence[Change]:
    """Take up to `limit` of the oldest rows out of the outbox, in the caller's transaction (oldest first).

    Deleted as they are read: the rows come back if the transaction does not commit, and a second deliverer skips
    them (PostgreSQL: SKIP LOCKED; SQLite: one writer at a time)."""
    oldest = select(PushOutbox.id).order_by(PushOutbox.id).limit(limit)
    if s.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    rows = s.execute(delete(PushOutbox).where(PushOutbox.id.in_(oldest))
                     .returning(PushOutbox.id, PushOutbox.did, PushOutbox.event_type, PushOutbox.data,
                                PushOutbox.created_ms)
                     .execution_options(synchronize_session=False)).all()
    return [Change(r.did, r.event_type, r.data, r.created_ms) for r in sorted(rows, key=lambda r: r.id)]
