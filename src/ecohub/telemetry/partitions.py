"""PostgreSQL: `telemetry` and `device_events` are partitioned by day (RANGE on `ts`, unix ms, UTC days).

Why daily: retention is set in days, so a day is the smallest unit a policy can expire, and dropping a day's
partition frees exactly what expired (a weekly partition would keep up to six days too many, or could only go
when its newest day expires). A year of raw data is ~365 partitions per table, which PostgreSQL prunes at plan
time for a read with a time range. Every table also has a `_default` partition, so a sample stamped by a device
with a wrong clock (1970, 2099) is stored instead of failing the ingest batch; when a day's partition is made
later, the default's rows of that day move into it. Rollups (`telemetry_rollups`) stay one table: they are small
and their retention deletes in batches. SQLite keeps one table per store (nothing here runs there).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from ecohub.store import Databases
from ecohub.telemetry.domain import DAY

TABLES = ("telemetry", "device_events")
LOCK_TIMEOUT = "2s"  # a partition DDL waits this long for the parent's lock, then gives up until the next run
log = logging.getLogger(__name__)
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of a table: [lo, hi) in unix ms, or the default partition (lo = hi = None)."""

    table: str
    name: str
    lo: int | None
    hi: int | None

    def to_dict(self) -> dict[str, Any]:
        """As the CLI and the job report show it."""
        return {"table": self.table, "partition": self.name, "from": _iso(self.lo), "to": _iso(self.hi)}


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def name_of(table: str, day_ms: int) -> str:
    """The partition of `table` holding the UTC day starting at `day_ms`: `telemetry_p20261201`."""
    return f"{table}_p{datetime.fromtimestamp(day_ms / 1000, UTC):%Y%m%d}"


def is_partitioned(conn: Connection, table: str) -> bool:
    """Whether `table` (in the current schema) is a partitioned table."""
    found = conn.execute(text(
        "SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid "
        "WHERE c.relname = :t AND c.relnamespace = to_regnamespace(current_schema())"), {"t": table}).first()
    return found is not None


def listed(conn: Connection, table: str) -> list[Partition]:
    """The partitions of `table`, oldest first, the default last (catalog reads only: with relid 0, pg_get_expr
    does not lock the partition, so listing never waits behind a query holding the table)."""
    rows = conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, 0) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :t AND p.relnamespace = to_regnamespace(current_schema())"), {"t": table})
    out = []
    for name, bound in rows:
        m = _BOUND.search(bound or "")
        out.append(Partition(table, name, int(m[1]), int(m[2])) if m else Partition(table, name, None, None))
    return sorted(out, key=lambda p: (p.lo is None, p.lo or 0))


def create_day(conn: Connection, table: str, day_ms: int) -> Partition:
    """Make the partition of one day in the caller's transaction: a table like the parent, the default
    partition's rows of that day moved into it, then attached (which builds the parent's indexes on it).

    ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so ingest and reads go on meanwhile."""
    lo, hi = day_ms, day_ms + DAY
    name = name_of(table, day_ms)
    q = conn.dialect.identifier_preparer.quote
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text(f"CREATE TABLE {q(name)} (LIKE {q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    default = f"{table}_default"
    if conn.execute(text("SELECT to_regclass(:d)"), {"d": default}).scalar() is not None:
        conn.execute(text(f"WITH moved AS (DELETE FROM {q(default)} WHERE ts >= {lo} AND ts < {hi} RETURNING *) "
                          f"INSERT INTO {q(name)} SELECT * FROM moved"))
    conn.execute(text(f"ALTER TABLE {q(table)} ATTACH PARTITION {q(name)} FOR VALUES FROM ({lo}) TO ({hi})"))
    return Partition(table, name, lo, hi)


class Partitions:
    """Daily partitions of the telemetry tables of every PostgreSQL cell: made ahead, dropped whole."""

    def __init__(self, dbs: Databases, *, ahead: int) -> None:
        self.dbs = dbs
        self.ahead = ahead

    def enabled(self, cell: str) -> bool:
        """Whether this cell's telemetry is partitioned (PostgreSQL after migration 0011; never SQLite)."""
        engine = self.dbs.cell_engines[self.dbs.check_cell(cell)]
        if engine.dialect.name != "postgresql":
            return False
        with engine.connect() as conn:
            return is_partitioned(conn, "telemetry")

    def in_cell(self, cell: str) -> list[Partition]:
        """Every partition of both tables in one cell ([] where nothing is partitioned)."""
        if not self.enabled(cell):
            return []
        with self.dbs.cell_engines[cell].connect() as conn:
            return [p for t in TABLES for p in listed(conn, t)]

    def ensure(self, cell: str, *, now_ms: int, ahead: int | None = None, since_ms: int | None = None
               ) -> list[Partition]:
        """Make the missing day partitions from today (or `since_ms`) to `ahead` days after today, one short
        transaction each; returns those made. A DDL that cannot get its lock in time is left to the next run."""
        if not self.enabled(cell):
            return []
        today = now_ms // DAY * DAY
        first = today if since_ms is None else min(today, since_ms // DAY * DAY)
        last = today + (self.ahead if ahead is None else ahead) * DAY
        made = []
        engine = self.dbs.cell_engines[cell]
        for table in TABLES:
            with engine.connect() as conn:
                have = {p.lo for p in listed(conn, table) if p.lo is not None}
            for day in range(first, last + 1, DAY):
                if day in have:
                    continue
                try:
                    with engine.begin() as conn:
                        made.append(create_day(conn, table, day))
                except DBAPIError as err:  # a lock timeout, or rows of that day arriving meanwhile: next run
                    log.warning("partition %s not made: %s", name_of(table, day), err.orig)
        return made

    def drop_before(self, cell: str, cutoff_ms: int) -> list[dict[str, Any]]:
        """Drop the partitions holding only rows stamped before `cutoff_ms` (every row in them has expired under
        every rule); returns each with the number of rows it held. The default partition is never dropped."""
        if not self.enabled(cell):
            return []
        engine = self.dbs.cell_engines[cell]
        q = engine.dialect.identifier_preparer.quote
        out = []
        for table in TABLES:
            with engine.connect() as conn:
                expired = [p for p in listed(conn, table) if p.hi is not None and p.hi <= cutoff_ms]
            for p in expired:
                try:
                    with engine.begin() as conn:
                        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                        rows = int(conn.execute(text(f"SELECT count(*) FROM {q(p.name)}")).scalar() or 0)
                        # DROP of a partition takes the parent's ACCESS EXCLUSIVE lock for a moment (a catalog
                        # change; the files go at commit): ingest waits at most LOCK_TIMEOUT behind it
                        conn.execute(text(f"DROP TABLE {q(p.name)}"))
                except DBAPIError as err:  # a lock timeout: the next run drops it
                    log.warning("partition %s not dropped: %s", p.name, err.orig)
                    continue
                out.append({**p.to_dict(), "rows": rows})
        return out
