"""Use cases of telemetry: append in the ingest unit of work; read series and events."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, func, insert, or_, select, tuple_
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role
from ecohub.errors import ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.privacy.sealing import Opener, PayloadSealer, Seal, event_aad, seal_fields, telemetry_aad
from ecohub.spec.compiled import CompiledSpec
from ecohub.spec.domain import Property
from ecohub.store import Databases
from ecohub.store.upsert import RawStatement, json_text
from ecohub.telemetry.domain import (
    DAY,
    HOUR,
    MAX_POINTS,
    Agg,
    Kind,
    Stats,
    bucket_for_points,
    bucket_start,
    bucketize,
    check_range,
    format_bucket,
    kind_of,
    parse_agg,
    parse_bucket,
    points_of,
    runs_of,
)
from ecohub.telemetry.models import DeviceEvent, Sample
from ecohub.telemetry.partitions import Partitions
from ecohub.telemetry.retention import Retention
from ecohub.telemetry.rollup import RollupReport, Rollups

MAX_READ = 10_000
MAX_AHEAD = 366  # days of partitions made ahead at most
COPY_MIN = 8  # from this many samples a batch goes through COPY on PostgreSQL (below it COPY's setup costs more)
SAMPLE_COLUMNS = ("did", "key", "ts", "value", "msg_id", "subject", "sealed")
SpecOf = Callable[[str], CompiledSpec]  # a product's compiled spec by model (ecosystem's ProductService.compiled)


def _sample_row(row: dict[str, Any], seal: Seal | None, *, as_text: bool = False) -> dict[str, Any]:
    """The stored row of one sample; `as_text`: the value as JSON text (the raw executemany binds it so)."""
    if seal is None:  # an unbound device's value: stored as it is (no associated data to build)
        value, subject, sealed = row["value"], None, None
    else:
        value, subject, sealed = seal_fields(seal, row["value"], telemetry_aad(row["did"], row["key"]))
    return {**row, "value": json_text(value) if as_text else value, "subject": subject, "sealed": sealed}


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]  # Core inserts: no ORM bulk-insert work per row


# the SQLite hot path: one executemany on the DB-API cursor (SQLAlchemy's ORM bulk insert costs ~10 µs a row)
_INSERT_SAMPLES = RawStatement(lambda insert_: insert_(Sample.__table__), SAMPLE_COLUMNS)


def _event_row(row: dict[str, Any], seal: Seal | None) -> dict[str, Any]:
    args, subject, sealed = seal_fields(seal, row["arguments"], event_aad(row["did"], row["siid"], row["eiid"]))
    return {**row, "arguments": args, "subject": subject, "sealed": sealed}


class TelemetryService:
    """Time series of property values and device events per cell; a bound device's payloads are sealed."""

    def __init__(self, dbs: Databases, sealer: PayloadSealer, *, spec_of: SpecOf | None = None,
                 retention: Retention | None = None) -> None:
        self.dbs = dbs
        self.sealer = sealer
        self.spec_of = spec_of
        self.rollups = Rollups(sealer)
        self.retention = retention or Retention(dbs, raw_days=365, rollup_days=3 * 365, batch=5000,
                                                partitions=Partitions(dbs, ahead=7))
        self.partitions = self.retention.partitions or Partitions(dbs, ahead=7)

    def retention_of(self, model: str, *, caller: Principal | None = None) -> dict[str, Any]:
        """A product's retention as enforced: its days, each property's exceptions, the hub's default."""
        self._operator(caller, model)
        return self.retention.effective(model)

    def set_retention(self, model: str, *, key: str | None = None, raw_days: int | None = None,
                      rollup_days: int | None = None, caller: Principal | None = None) -> dict[str, Any]:
        """Set a product's (or with `key`, one property's) retention; both days None goes back to the default."""
        self._operator(caller, model)
        if key is not None:
            _check_key(key)
        self.retention.set(model, key=key, raw_days=raw_days, rollup_days=rollup_days,
                           actor=caller.actor if caller else "cli", now_ms=int(time.time() * 1000))
        return self.retention.effective(model)

    def _operator(self, caller: Principal | None, model: str) -> None:
        if caller is not None and caller.role != Role.OPERATOR:
            raise Forbidden("only the operator sets retention", code=ErrorCode.FORBIDDEN)
        if self.spec_of is not None:
            self.spec_of(model)  # an unknown product is a 404, not a policy for nothing

    def partitions_of(self, *, ahead: int | None = None, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Make the missing daily partitions up to `ahead` days ahead (default: the setting) in every cell, then
        list every partition, with `made` true for those just made; [] where nothing is partitioned (SQLite)."""
        if caller is not None and caller.role != Role.OPERATOR:
            raise Forbidden("only the operator manages partitions", code=ErrorCode.FORBIDDEN)
        if ahead is not None and not 0 <= ahead <= MAX_AHEAD:
            raise InvalidInput(f"ahead must be between 0 and {MAX_AHEAD} days", code=ErrorCode.INVALID_ARGUMENT)
        now = int(time.time() * 1000)
        out = []
        for cell in self.dbs.cells:
            made = {p.name for p in self.partitions.ensure(cell, now_ms=now, ahead=ahead)}
            out += [{"cell": cell, **p.to_dict(), "made": p.name in made} for p in self.partitions.in_cell(cell)]
        return out

    def maintain(self, *, now_ms: int | None = None, prune: bool = True) -> dict[str, Any]:
        """The maintenance job: make the partitions of the coming days (PostgreSQL), roll up what arrived since
        the last run, then drop what retention says is expired, in every cell; returns what it did per cell."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        skip_before = now - self.retention.min_raw_days() * DAY
        out: dict[str, Any] = {}
        for cell in self.dbs.cells:
            made = self.partitions.ensure(cell, now_ms=now) if self.partitions.enabled(cell) else None
            rolled = RollupReport()
            while True:
                with self.dbs.cell_session(cell) as s:
                    step = self.rollups.run(s, cell, now_ms=now, skip_before=skip_before)
                    s.commit()
                rolled.samples += step.samples
                rolled.hours += step.hours
                rolled.days += step.days
                if step.samples == 0:
                    break
            out[cell] = {"rolled_up": rolled.to_dict()}
            if made is not None:
                out[cell]["partitions_made"] = [p.to_dict() for p in made]
            if prune:
                out[cell]["dropped"] = self.retention.prune(cell, now_ms=now).to_dict()
        return out

    def property_of(self, model: str, key: str) -> Property | None:
        """The spec property `key` of a product, or None when unknown (then values decide how to chart it)."""
        if self.spec_of is None:
            return None
        siid, _, piid = key.partition(".")
        try:
            cp = self.spec_of(model).properties.get((int(siid), int(piid)))
        except NotFound:
            return None
        return cp.prop if cp else None

    @staticmethod
    def append(session: Session, samples: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]],
               seals: Mapping[str, Seal]) -> None:
        """Multi-row inserts inside the caller's transaction; `seals` (from PayloadSealer.seals) by did."""
        if samples:
            if session.get_bind().dialect.name != "postgresql":  # SQLite: JSON text as SQLAlchemy's type binds it
                _INSERT_SAMPLES.run(session, [_sample_row(r, seals.get(r["did"]), as_text=True) for r in samples])
            elif len(samples) >= COPY_MIN:
                _copy_samples(session, [_sample_row(r, seals.get(r["did"])) for r in samples])
            else:  # small batches: one prepared executemany
                session.execute(insert(_table(Sample)), [_sample_row(r, seals.get(r["did"])) for r in samples])
        if events:
            session.execute(insert(_table(DeviceEvent)), [_event_row(r, seals.get(r["did"])) for r in events])

    def series(self, cell: str, did: str, key: str, *, since: int | None = None, until: int | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        """Samples of one property, oldest first, in [since, until] (unix ms): the newest `limit` of them."""
        return self.series_page(cell, did, key, since=since, until=until, limit=limit)[0]

    def series_page(self, cell: str, did: str, key: str, *, since: int | None = None, until: int | None = None,
                    limit: int = 1000, before: tuple[int, int] | None = None,
                    ) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """The newest `limit` samples in [since, until] older than the position `before` (ts, row id), oldest
        first, and the position of the page's oldest row when older samples remain (None when this is the last)."""
        if not 1 <= limit <= MAX_READ:
            raise InvalidInput(f"limit must be between 1 and {MAX_READ}", code=ErrorCode.INVALID_LIMIT)
        _check_key(key)
        q = (select(Sample.ts, Sample.id, Sample.value, Sample.subject, Sample.sealed)
             .where(Sample.did == did, Sample.key == key))
        if since is not None:
            q = q.where(Sample.ts >= since)
        if until is not None:
            q = q.where(Sample.ts <= until)
        if before is not None:  # keyset: rows appended during a walk never shift the pages still to come
            q = q.where(tuple_(Sample.ts, Sample.id) < tuple_(*before))
        q = q.order_by(Sample.ts.desc(), Sample.id.desc()).limit(limit + 1)
        aad = telemetry_aad(did, key)
        out = []
        with self.dbs.cell_session(cell) as s:
            rows = s.execute(q).all()
            more = len(rows) > limit
            rows = rows[:limit]
            opener = self.sealer.opener(s, cell)
            for ts, _id, plain, subject, sealed in reversed(rows):
                readable, value = opener.value(plain, subject, sealed, aad)
                if readable:  # a row sealed under an erased owner's key is gone for everyone
                    out.append({"ts": ts, "value": value})
        return out, ((rows[-1][0], rows[-1][1]) if more else None)

    def downsample(self, cell: str, did: str, key: str, *, model: str | None = None, since: int | None = None,
                   until: int | None = None, bucket: str | None = None, agg: str | None = None,
                   points: int | None = None, floor: int = 0) -> dict[str, Any]:
        """One property in [since, until] as one point per bucket (`bucket`, or about `points` of them).

        Numbers: avg/min/max/count, counters also `delta` (growth per bucket); bools and enums: `last` per bucket
        plus `runs`, the state changes as a step line. Sealed values are opened here, in this process, and
        aggregated in Python: the database never sees a bound device's values (docs/privacy.md). Nothing before
        `floor` (a user's binding epoch) is read, not even the state the range starts in.
        """
        _check_key(key)
        until = int(time.time() * 1000) if until is None else until
        since = max(until - DAY if since is None else since, floor)
        if points is not None:
            bucket_ms = bucket_for_points(since, until, points)
        elif bucket is not None:
            bucket_ms = parse_bucket(bucket)
        else:
            bucket_ms = bucket_for_points(since, until, 500)
        check_range(since, until, bucket_ms)
        kind = kind_of(self.property_of(model, key) if model else None)
        chosen = parse_agg(agg, kind)
        res = DAY if bucket_ms % DAY == 0 else HOUR if bucket_ms % HOUR == 0 else 0
        buckets, samples, before, source = self._read(cell, did, key, since, until, floor, bucket_ms, res)
        if kind == Kind.NUMBER and any(isinstance(v, str) for _, v in samples[:100]):
            kind = Kind.TEXT  # a property the spec does not declare, reported as text
            chosen = parse_agg(agg, kind)
        pts = points_of(buckets, chosen, before=before)
        out: dict[str, Any] = {"did": did, "key": key, "kind": kind.value, "agg": chosen.value,
                               "bucket": format_bucket(bucket_ms), "bucket_ms": bucket_ms, "since": since,
                               "until": until, "source": source, "points": pts}
        if kind == Kind.STATE:
            start = [(since, before.last)] if before is not None and before.count else []
            exact = source == "raw"  # rollups keep each hour's last state, not every change within it
            changes = samples if exact else [(p["ts"], p["value"]) for p in points_of(buckets, Agg.LAST)]
            runs = runs_of(start + changes, until)
            if len(runs) > MAX_POINTS:  # too many changes to draw: one run per bucket's last state
                runs = runs_of(start + [(p["ts"], p["value"]) for p in points_of(buckets, Agg.LAST)], until)
            out["runs"] = runs
        return out

    def _read(self, cell: str, did: str, key: str, since: int, until: int, floor: int, bucket_ms: int,
              res: int) -> tuple[dict[int, Stats], list[tuple[int, Any]], Stats, str]:
        """Stats per output bucket: whole hours/days from the rollups where they are complete, the ragged edges
        (and what the job has not rolled up yet) from the raw samples."""
        with self.dbs.cell_session(cell) as s:
            opener = self.sealer.opener(s, cell)
            cut_lo = cut_hi = until + 1  # [cut_lo, cut_hi) answers from rollups
            rolled: dict[int, Stats] = {}
            complete = 0
            if res:
                cut_lo = -(-since // res) * res
                rolled, complete = Rollups.read(s, opener, did, key, res, cut_lo, until + 1)
                cut_hi = max(cut_lo, min(bucket_start(until + 1, res), complete))
            samples, before = self._opened(s, opener, did, key, since, until, floor, skip=(cut_lo, cut_hi),
                                           complete=complete)
        buckets = bucketize(samples, bucket_ms)
        for b, st in rolled.items():
            at = bucket_start(b, bucket_ms)
            if at in buckets:
                buckets[at].merge(st)
            else:
                buckets[at] = st
        source = "rollup" if rolled and not samples else "rollup+raw" if rolled else "raw"
        return buckets, samples, before, source

    @staticmethod
    def _opened(s: Session, opener: Opener, did: str, key: str, since: int, until: int, floor: int, *,
                skip: tuple[int, int] = (0, 0), complete: int = 0) -> tuple[list[tuple[int, Any]], Stats]:
        """The readable samples in [since, until] but not in [skip) oldest first, and a Stats of the last one in
        [floor, since)."""
        cols = (Sample.ts, Sample.value, Sample.subject, Sample.sealed)
        aad = telemetry_aad(did, key)
        out: list[tuple[int, Any]] = []
        if not (skip[0] <= since and skip[1] > until):  # else the rollups answer the whole range
            q = select(*cols).where(Sample.did == did, Sample.key == key, Sample.ts >= since, Sample.ts <= until)
            if skip[1] > skip[0]:
                q = q.where(or_(Sample.ts < skip[0], Sample.ts >= skip[1]))
            for ts, plain, subject, sealed in s.execute(q.order_by(Sample.ts, Sample.id)):
                readable, value = opener.value(plain, subject, sealed, aad)
                if readable:
                    out.append((ts, value))
        return out, TelemetryService._before(s, opener, did, key, since, floor, complete)

    @staticmethod
    def _before(s: Session, opener: Opener, did: str, key: str, since: int, floor: int, complete: int) -> Stats:
        """A Stats of the last readable sample in [floor, since): the raw rows after the rollups' edge, else the
        last value of the newest hourly rollup, else the raw rows before the edge. (On PostgreSQL an open-ended
        raw look-back plans and probes every older day partition: ~9 ms at 90 days, so the rollups go first.)"""
        aad = telemetry_aad(did, key)
        last = select(Sample.ts, Sample.value, Sample.subject, Sample.sealed).where(Sample.did == did,
                                                                                   Sample.key == key)

        def raw(lo: int, hi: int) -> Stats:
            st = Stats()
            q = last.where(Sample.ts >= lo, Sample.ts < hi).order_by(Sample.ts.desc(), Sample.id.desc()).limit(1)
            for ts, plain, subject, sealed in s.execute(q):
                readable, value = opener.value(plain, subject, sealed, aad)
                if readable:
                    st.add(ts, value)
            return st

        edge = max(floor, min(bucket_start(since, HOUR), complete))  # before it, the rollups are complete
        if edge < since:
            st = raw(edge, since)
            if st.count:
                return st
        if edge > floor:
            got = Rollups.last_before(s, opener, did, key, -(-floor // HOUR) * HOUR, edge)
            if got is not None:
                st = Stats()
                st.add(*got)
                return st
            return raw(floor, edge)
        return Stats()

    def events(self, cell: str, did: str, *, since: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Events of one device, newest first."""
        return self.events_page(cell, did, since=since, limit=limit)[0]

    def events_page(self, cell: str, did: str, *, since: int | None = None, limit: int = 100,
                    before: tuple[int, int] | None = None) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """Events of one device older than the position `before` (ts, row id), newest first, and the position of
        the page's last row when older events remain (None on the last page)."""
        limit = max(1, min(limit, MAX_READ))
        q = select(DeviceEvent).where(DeviceEvent.did == did)
        if since is not None:
            q = q.where(DeviceEvent.ts >= since)
        if before is not None:  # keyset: events arriving during a walk land before the first page, never in it
            q = q.where(tuple_(DeviceEvent.ts, DeviceEvent.id) < tuple_(*before))
        q = q.order_by(DeviceEvent.ts.desc(), DeviceEvent.id.desc()).limit(limit + 1)
        out = []
        with self.dbs.cell_session(cell) as s:
            rows = list(s.scalars(q))
            more = len(rows) > limit
            rows = rows[:limit]
            opener = self.sealer.opener(s, cell)
            for e in rows:
                readable, arguments = opener.value(e.arguments, e.subject, e.sealed, event_aad(did, e.siid, e.eiid))
                if readable:
                    out.append({"siid": e.siid, "eiid": e.eiid, "arguments": arguments, "ts": e.ts,
                                "msg_id": e.msg_id})
        return out, ((rows[-1].ts, rows[-1].id) if more else None)

    def count(self, cell: str, did: str | None = None) -> int:
        """Number of samples (of one device)."""
        q = select(func.count()).select_from(Sample)
        if did:
            q = q.where(Sample.did == did)
        with self.dbs.cell_session(cell) as s:
            return int(s.scalar(q) or 0)


def _check_key(key: str) -> None:
    parts = key.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InvalidInput(f"key {key!r} must be 'siid.piid', e.g. 2.1", code=ErrorCode.INVALID_KEY)


def _copy_samples(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """COPY the rows into telemetry on the session's own connection (psycopg 3), inside its transaction."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY telemetry ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN") as copy:
        for r in rows:
            # the value as JSON text (jsonb's input); a sealed row's is JSON null, as the executemany path stores it
            copy.write_row((r["did"], r["key"], r["ts"], json_text(r["value"]), r["msg_id"], r["subject"],
                            r["sealed"]))
