"""PostgreSQL: telemetry and device_events become partitioned by day (RANGE on ts); a no-op on SQLite

Each table is renamed aside, a partitioned parent made like it (same columns, defaults and id sequence; the
primary key becomes (id, ts) since a partitioned table's unique keys must hold the partition column), a default
partition plus one partition per UTC day that holds rows (within ten years back) and for today and the next
seven days, the rows copied over with INSERT ... SELECT, the primary key and indexes built on the parent (and so on
every partition), and the old table dropped. The maintenance job makes the later days' partitions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import Connection, text

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DAY = 86_400_000
AHEAD = 7
WINDOW_DAYS = 3660  # rows stamped earlier (or later than the days made ahead) go to the default partition
TABLES = {  # table -> its indexes (name, columns) as the models declare them
    "telemetry": [("ix_telemetry_did_key_ts", "did, key, ts"), ("ix_telemetry_ts", "ts")],
    "device_events": [("ix_device_events_did_ts", "did, ts")],
}


def _swap(conn: Connection, table: str, *, partitioned: bool) -> None:
    """Rebuild `table` partitioned (or back to one table) with the same rows, ids and sequence."""
    old = f"{table}_{'unpartitioned' if partitioned else 'partitioned'}"
    seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
    conn.execute(text(f"ALTER TABLE {table} RENAME TO {old}"))
    conn.execute(text(f"ALTER TABLE {old} DROP CONSTRAINT pk_{table}"))
    for name, _ in TABLES[table]:
        conn.execute(text(f"DROP INDEX {name}"))
    how = " PARTITION BY RANGE (ts)" if partitioned else ""
    conn.execute(text(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){how}"))
    if seq:
        conn.execute(text(f"ALTER SEQUENCE {seq} OWNED BY {table}.id"))
    if partitioned:
        conn.execute(text(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT"))
        today = int(time.time() * 1000) // DAY * DAY
        lo, hi = today - WINDOW_DAYS * DAY, today + (AHEAD + 1) * DAY
        days = {int(d) * DAY for (d,) in conn.execute(text(
            f"SELECT DISTINCT ts / {DAY} FROM {old} WHERE ts >= {lo} AND ts < {hi}"))}
        for day in sorted(days | set(range(today, hi, DAY))):
            name = f"{table}_p{datetime.fromtimestamp(day / 1000, UTC):%Y%m%d}"
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({day}) TO ({day + DAY})"))
    conn.execute(text(f"INSERT INTO {table} SELECT * FROM {old}"))  # LIKE kept the column order
    # keys and indexes after the copy: one build per partition instead of row-by-row maintenance
    conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY "
                      f"({'id, ts' if partitioned else 'id'})"))
    for name, cols in TABLES[table]:
        conn.execute(text(f"CREATE INDEX {name} ON {table} ({cols})"))
    conn.execute(text(f"DROP TABLE {old}"))
    conn.execute(text(f"ANALYZE {table}"))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return  # SQLite keeps one table per store and deletes expired rows in batches
    for table in TABLES:
        _swap(conn, table, partitioned=True)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in TABLES:
        _swap(conn, table, partitioned=False)
