"""Use cases of telemetry: append in the ingest unit of work; read series and events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ecohub.errors import ErrorCode, InvalidInput
from ecohub.privacy.sealing import PayloadSealer, Seal, event_aad, seal_fields, telemetry_aad
from ecohub.store import Databases
from ecohub.telemetry.models import DeviceEvent, Sample

MAX_READ = 10_000


def _sample_row(row: dict[str, Any], seal: Seal | None) -> dict[str, Any]:
    value, subject, sealed = seal_fields(seal, row["value"], telemetry_aad(row["did"], row["key"]))
    return {**row, "value": value, "subject": subject, "sealed": sealed}


def _event_row(row: dict[str, Any], seal: Seal | None) -> dict[str, Any]:
    args, subject, sealed = seal_fields(seal, row["arguments"], event_aad(row["did"], row["siid"], row["eiid"]))
    return {**row, "arguments": args, "subject": subject, "sealed": sealed}


class TelemetryService:
    """Time series of property values and device events per cell; a bound device's payloads are sealed."""

    def __init__(self, dbs: Databases, sealer: PayloadSealer) -> None:
        self.dbs = dbs
        self.sealer = sealer

    @staticmethod
    def append(session: Session, samples: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]],
               seals: Mapping[str, Seal]) -> None:
        """Multi-row inserts inside the caller's transaction; `seals` (from PayloadSealer.seals) by did."""
        if samples:
            session.execute(insert(Sample), [_sample_row(r, seals.get(r["did"])) for r in samples])
        if events:
            session.execute(insert(DeviceEvent), [_event_row(r, seals.get(r["did"])) for r in events])

    def series(self, cell: str, did: str, key: str, *, since: int | None = None, until: int | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        """Samples of one property, oldest first, in [since, until] (unix ms)."""
        if not 1 <= limit <= MAX_READ:
            raise InvalidInput(f"limit must be between 1 and {MAX_READ}", code=ErrorCode.INVALID_LIMIT)
        parts = key.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InvalidInput(f"key {key!r} must be 'siid.piid', e.g. 2.1", code=ErrorCode.INVALID_KEY)
        q = select(Sample.ts, Sample.value, Sample.subject, Sample.sealed).where(Sample.did == did, Sample.key == key)
        if since is not None:
            q = q.where(Sample.ts >= since)
        if until is not None:
            q = q.where(Sample.ts <= until)
        q = q.order_by(Sample.ts.desc(), Sample.id.desc()).limit(limit)
        aad = telemetry_aad(did, key)
        out = []
        with self.dbs.cell_session(cell) as s:
            opener = self.sealer.opener(s, cell)
            for ts, plain, subject, sealed in reversed(s.execute(q).all()):
                readable, value = opener.value(plain, subject, sealed, aad)
                if readable:  # a row sealed under an erased owner's key is gone for everyone
                    out.append({"ts": ts, "value": value})
        return out

    def events(self, cell: str, did: str, *, since: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Events of one device, newest first."""
        q = select(DeviceEvent).where(DeviceEvent.did == did)
        if since is not None:
            q = q.where(DeviceEvent.ts >= since)
        q = q.order_by(DeviceEvent.ts.desc(), DeviceEvent.id.desc()).limit(min(limit, MAX_READ))
        out = []
        with self.dbs.cell_session(cell) as s:
            opener = self.sealer.opener(s, cell)
            for e in s.scalars(q):
                readable, arguments = opener.value(e.arguments, e.subject, e.sealed, event_aad(did, e.siid, e.eiid))
                if readable:
                    out.append({"siid": e.siid, "eiid": e.eiid, "arguments": arguments, "ts": e.ts,
                                "msg_id": e.msg_id})
        return out

    def count(self, cell: str, did: str | None = None) -> int:
        """Number of samples (of one device)."""
        q = select(func.count()).select_from(Sample)
        if did:
            q = q.where(Sample.did == did)
        with self.dbs.cell_session(cell) as s:
            return int(s.scalar(q) or 0)
