"""Continuous rollups: hourly and daily aggregates of every property, kept up to date by the maintenance job.

The job follows the samples by id (so a late sample, stamped hours ago by its device, is rolled up too): each run
takes the samples written since the last run, finds the (device, property, hour) buckets they fall in, and
recomputes those buckets whole from the raw rows, then the days holding them from their hours. Values are opened
with their owner's key to be aggregated and each rollup is sealed again under the same key, one row per owner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from ecohub.errors import NotFound
from ecohub.privacy.sealing import Opener, PayloadSealer, Seal, seal_fields, telemetry_aad
from ecohub.telemetry.domain import DAY, HOUR, Stats, bucket_start
from ecohub.telemetry.models import JobMark, Rollup, Sample

RESOLUTIONS = (HOUR, DAY)
CHUNK = 50_000  # samples per step of the job (ids), so a backlog is worked off in bounded transactions
ROLLED_ID = "rollup.last_id"
COMPLETE_BEFORE = "rollup.complete_before"  # rollups hold every sample stamped before this (as of the last run)


def rollup_aad(did: str, key: str, res: int, bucket: int) -> bytes:
    """Associated data of one sealed rollup: its device, property, resolution and bucket."""
    return f"telemetry_rollups:{did}:{key}:{res}:{bucket}".encode()


def mark(s: Session, name: str) -> int | None:
    """A job mark, or None before the first run."""
    row = s.get(JobMark, name)
    return row.value if row else None


def set_mark(s: Session, name: str, value: int) -> None:
    """Set a job mark in the caller's transaction."""
    row = s.get(JobMark, name)
    if row is None:
        s.add(JobMark(name=name, value=value))
    else:
        row.value = value


@dataclass
class RollupReport:
    """What one run did."""

    samples: int = 0
    hours: int = 0
    days: int = 0

    def to_dict(self) -> dict[str, int]:
        """As the CLI and the job log show it."""
        return {"samples": self.samples, "hours": self.hours, "days": self.days}


class Rollups:
    """Maintains and reads the rollups of one hub (every cell)."""

    def __init__(self, sealer: PayloadSealer) -> None:
        self.sealer = sealer

    def run(self, s: Session, cell: str, *, now_ms: int, skip_before: int = 0) -> RollupReport:
        """Roll up the samples written since the last run (one chunk of ids); buckets starting before
        `skip_before` (raw retention: their raw rows are incomplete) are left as they are."""
        report = RollupReport()
        last = mark(s, ROLLED_ID) or 0
        chunk = select(Sample.id).where(Sample.id > last).order_by(Sample.id).limit(CHUNK).subquery()
        hi = s.scalar(select(func.max(chunk.c.id)))
        if hi is not None:
            touched: dict[int, set[tuple[str, str]]] = defaultdict(set)
            rows = s.execute(select(Sample.did, Sample.key, Sample.ts).where(Sample.id > last, Sample.id <= hi))
            for did, key, ts in rows:
                report.samples += 1
                h = bucket_start(ts, HOUR)
                if h >= skip_before:
                    touched[h].add((did, key))
            opener = self.sealer.opener(s, cell)
            days: dict[int, set[tuple[str, str]]] = defaultdict(set)
            for h, pairs in touched.items():
                self._hour(s, cell, opener, h, pairs)
                report.hours += len(pairs)
                days[bucket_start(h, DAY)].update(pairs)
            for d, pairs in days.items():
                self._day(s, cell, opener, d, pairs)
                report.days += len(pairs)
            set_mark(s, ROLLED_ID, hi)
        if s.scalar(select(func.max(Sample.id))) == (hi if hi is not None else last):
            set_mark(s, COMPLETE_BEFORE, bucket_start(now_ms, HOUR))  # caught up: every closed hour is rolled up
        return report

    def _hour(self, s: Session, cell: str, opener: Opener, h: int, pairs: set[tuple[str, str]]) -> None:
        dids = sorted({d for d, _ in pairs})
        q = select(Sample.did, Sample.key, Sample.ts, Sample.value, Sample.subject, Sample.sealed).where(
            Sample.did.in_(dids), Sample.ts >= h, Sample.ts < h + HOUR)
        stats: dict[tuple[str, str, str | None], Stats] = defaultdict(Stats)
        for did, key, ts, plain, subject, sealed in s.execute(q):
            if (did, key) not in pairs:
                continue
            readable, value = opener.value(plain, subject, sealed, telemetry_aad(did, key))
            if readable:
                stats[(did, key, subject)].add(ts, value)
        self._replace(s, cell, HOUR, h, pairs, stats)

    def _day(self, s: Session, cell: str, opener: Opener, d: int, pairs: set[tuple[str, str]]) -> None:
        dids = sorted({did for did, _ in pairs})
        q = select(Rollup).where(Rollup.did.in_(dids), Rollup.res == HOUR, Rollup.bucket >= d, Rollup.bucket < d + DAY)
        stats: dict[tuple[str, str, str | None], Stats] = defaultdict(Stats)
        for r in s.scalars(q):
            if (r.did, r.key) not in pairs:
                continue
            readable, st = opener.value(r.stats, r.subject, r.sealed, rollup_aad(r.did, r.key, HOUR, r.bucket))
            if readable:
                stats[(r.did, r.key, r.subject)].merge(Stats.from_dict(st))
        self._replace(s, cell, DAY, d, pairs, stats)

    def _replace(self, s: Session, cell: str, res: int, bucket: int, pairs: Iterable[tuple[str, str]],
                 stats: dict[tuple[str, str, str | None], Stats]) -> None:
        todo = sorted(set(pairs))
        for i in range(0, len(todo), 500):  # one DELETE per bucket and 500 properties, not one per property
            part = todo[i:i + 500]
            s.execute(delete(Rollup).where(Rollup.res == res, Rollup.bucket == bucket,
                                           Rollup.did.in_(sorted({d for d, _ in part})),
                                           tuple_(Rollup.did, Rollup.key).in_(part)))
        rows = []
        for (did, key, subject), st in stats.items():
            seal = self._seal(s, cell, subject)
            if subject is not None and seal is None:
                continue  # the owner's key is gone: their aggregate is gone with it
            value, owner, sealed = seal_fields(seal, st.to_dict(), rollup_aad(did, key, res, bucket))
            rows.append({"did": did, "key": key, "res": res, "bucket": bucket, "stats": value, "subject": owner,
                         "sealed": sealed})
        if rows:
            s.execute(insert(Rollup), rows)

    def _seal(self, s: Session, cell: str, subject: str | None) -> Seal | None:
        if subject is None:
            return None
        try:
            return Seal(subject, AESGCM(self.sealer.keys.get(s, cell, subject)))
        except NotFound:
            return None

    @staticmethod
    def read(s: Session, opener: Opener, did: str, key: str, res: int, since: int,
             until: int) -> tuple[dict[int, Stats], int]:
        """Stats per bucket start of one property for whole buckets in [since, until) and the time the rollups
        are complete before (buckets from then on must be read raw)."""
        complete = mark(s, COMPLETE_BEFORE) or 0
        # columns, not entities: a year of hours is ~9k rows and the ORM's per-row cost would dominate the read
        q = select(Rollup.bucket, Rollup.stats, Rollup.subject, Rollup.sealed).where(
            Rollup.did == did, Rollup.key == key, Rollup.res == res, Rollup.bucket >= since,
            Rollup.bucket + res <= min(until, complete)).order_by(Rollup.bucket)
        out: dict[int, Stats] = {}
        for bucket, plain, subject, sealed in s.execute(q):
            readable, st = opener.value(plain, subject, sealed, rollup_aad(did, key, res, bucket))
            if readable:
                got = Stats.from_dict(st)
                if bucket in out:  # one row per sealing owner: an hour can hold two owners' rows
                    out[bucket].merge(got)
                else:
                    out[bucket] = got
        return out, complete


    @staticmethod
    def last_before(s: Session, opener: Opener, did: str, key: str, since: int, until: int) -> tuple[int, Any] | None:
        """(ts, value) of the last sample in the newest readable hourly rollup within [since, until)."""
        q = select(Rollup.bucket, Rollup.stats, Rollup.subject, Rollup.sealed).where(
            Rollup.did == did, Rollup.key == key, Rollup.res == HOUR, Rollup.bucket >= since,
            Rollup.bucket + HOUR <= until).order_by(Rollup.bucket.desc()).limit(8)
        best: tuple[int, Any] | None = None
        at = None
        for bucket, plain, subject, sealed in s.execute(q):
            if at is not None and bucket != at:
                break
            readable, st = opener.value(plain, subject, sealed, rollup_aad(did, key, HOUR, bucket))
            if readable:
                got = Stats.from_dict(st)
                if got.count and (best is None or got.last_ts >= best[0]):
                    best, at = (got.last_ts, got.last), bucket
        return best
