"""Use cases of telemetry: append in the ingest unit of work; read series and events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ecohub.errors import InvalidInput
from ecohub.store import Databases
from ecohub.telemetry.models import DeviceEvent, Sample

MAX_READ = 10_000


class TelemetryService:
    """Time series of property values and device events per cell."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs

    @staticmethod
    def append(session: Session, samples: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]) -> None:
        """Multi-row inserts inside the caller's transaction."""
        if samples:
            session.execute(insert(Sample.__table__), list(samples))
        if events:
            session.execute(insert(DeviceEvent.__table__), list(events))

    def series(self, cell: str, did: str, key: str, *, since: int | None = None, until: int | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        """Samples of one property, oldest first, in [since, until] (unix ms)."""
        if not 1 <= limit <= MAX_READ:
            raise InvalidInput(f"limit must be between 1 and {MAX_READ}", code="invalid_limit")
        parts = key.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InvalidInput(f"key {key!r} must be 'siid.piid', e.g. 2.1", code="invalid_key")
        q = select(Sample.ts, Sample.value).where(Sample.did == did, Sample.key == key)
        if since is not None:
            q = q.where(Sample.ts >= since)
        if until is not None:
            q = q.where(Sample.ts <= until)
        q = q.order_by(Sample.ts.desc(), Sample.id.desc()).limit(limit)
        with self.dbs.cell_session(cell) as s:
            rows = s.execute(q).all()
        return [{"ts": ts, "value": v} for ts, v in reversed(rows)]

    def events(self, cell: str, did: str, *, since: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Events of one device, newest first."""
        q = select(DeviceEvent).where(DeviceEvent.did == did)
        if since is not None:
            q = q.where(DeviceEvent.ts >= since)
        q = q.order_by(DeviceEvent.ts.desc(), DeviceEvent.id.desc()).limit(min(limit, MAX_READ))
        with self.dbs.cell_session(cell) as s:
            return [{"siid": e.siid, "eiid": e.eiid, "arguments": e.arguments, "ts": e.ts, "msg_id": e.msg_id}
                    for e in s.scalars(q)]

    def count(self, cell: str, did: str | None = None) -> int:
        """Number of samples (of one device)."""
        from sqlalchemy import func

        q = select(func.count()).select_from(Sample)
        if did:
            q = q.where(Sample.did == did)
        with self.dbs.cell_session(cell) as s:
            return int(s.scalar(q) or 0)
