"""Telemetry reads at scale: a 30-day chart of one device (500 points) from raw rows and from rollups, a 1-year read
from the daily rollups, on SQLite and on PostgreSQL, where the same rows sit once in the partitioned tables and once
in an unpartitioned copy (a cell before migration 0011) so the two read times compare on the same data.

    PYTHONPATH=src python bench/telemetry.py --backend postgres --samples 50000000 --devices 1000 --days 90
    PYTHONPATH=src python bench/telemetry.py --backend sqlite --samples 5000000 --devices 1000 --days 90
    PYTHONPATH=src python bench/telemetry.py                      # the old small SQLite run (20 devices, 5 min)

PostgreSQL: two throwaway cell databases on 127.0.0.1:5432, `…_part_eu` (migrated to head: partitioned by day) and
`…_flat_eu` (migrated to 0010, one table); the samples are generated with COPY into the first (keys and indexes
built after the load) and piped into the second (COPY TO STDOUT → COPY FROM STDIN, the same rows and ids).
SQLite: the ingest write path (`TelemetryService.append`, one executemany per batch). Values are unbound (plain)
power readings, key 11.2.

Rollups: `--rollups job` runs the maintenance job over every sample (what a hub does hourly; slow as a backfill
of millions of rows); `--rollups targets` (the default above 2M samples) rolls up only the devices the reads use
(each hour's stats from one read of the device's rows, written by the job's own code; days from hours as the job
does) and sets the job's marks as a caught-up job leaves them.
Reads cycle over `--targets` devices, each read once before timing. `--keep` leaves the PostgreSQL databases;
`--reuse PREFIX --devices N` measures the rollup-backed reads again on them (after a change to the read path).
Prints JSON.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text

from ecohub.bootstrap import Services, bootstrap
from ecohub.settings import Settings
from ecohub.store.migrate import alembic_config, upgrade_engine
from ecohub.telemetry.domain import DAY, HOUR, Stats, bucket_start, bucketize
from ecohub.telemetry.models import Sample
from ecohub.telemetry.rollup import COMPLETE_BEFORE, ROLLED_ID, set_mark

BATCH = 5000
KEY = "11.2"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
INDEXES = {"telemetry": [("ix_telemetry_did_key_ts", "did, key, ts"), ("ix_telemetry_ts", "ts")]}


def did_of(i: int) -> str:
    return f"eu-bench{i:08d}"


def plan(devices: int, days: int, samples: int | None, interval_s: int) -> int:
    """The interval between two samples of one device, in ms."""
    if samples:
        return max(1, days * DAY * devices // samples)
    return interval_s * 1000


def rows_of(devices: int, *, start: int, now: int, step: int) -> Iterator[tuple[str, int, float]]:
    """(did, ts, value) of every device, one per `step`, oldest first; devices spread over the step."""
    offsets = [i * step // devices for i in range(devices)]
    dids = [did_of(i) for i in range(devices)]
    for t in range(start, now - step, step):
        k = t // step
        for i in range(devices):
            yield dids[i], t + offsets[i], float((k + i) % 500)


def timed(fn: Callable[[], Any], reads: int) -> dict[str, float]:
    """p50/p99/max in ms of `reads` calls (wall clock), and p50/p99 of this process's CPU time per call (on a
    shared machine the wall clock's tail is mostly waiting for a core)."""
    ms, cpu = [], []
    for _ in range(reads):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    ms.sort()
    cpu.sort()

    def p99(xs: list[float]) -> float:
        return round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 2)
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": p99(ms), "max_ms": round(ms[-1], 2),
            "cpu_p50_ms": round(statistics.median(cpu), 2), "cpu_p99_ms": p99(cpu)}


class Reader:
    """The three reads of the benchmark against one hub's services, cycling over the target devices."""

    def __init__(self, services: Services, targets: list[str], now: int, *, freeze: bool = True) -> None:
        self.s, self.targets, self.now, self.n, self.freeze = services, targets, now, 0, freeze

    def _next(self) -> str:
        self.n += 1
        return self.targets[self.n % len(self.targets)]

    def chart30(self) -> dict[str, Any]:
        return self.s.telemetry.downsample("eu", self._next(), KEY, since=self.now - 30 * DAY, until=self.now - 1,
                                           points=500)

    def year(self) -> dict[str, Any]:
        return self.s.telemetry.downsample("eu", self._next(), KEY, since=self.now - 365 * DAY, until=self.now - 1,
                                           bucket="1d")

    def measure(self, fn: Callable[[], dict[str, Any]], reads: int) -> dict[str, Any]:
        for _ in self.targets:  # each target once: its pages in the cache, psycopg's prepared statements made
            fn()
        if self.freeze:  # as `ecohub up` does once started (hub.py): long-lived objects out of the collector's way
            gc.collect()
            gc.freeze()
        sample = fn()
        return {**timed(fn, reads), "points": len(sample["points"]), "source": sample["source"],
                "bucket": sample["bucket"]}


def rollup(services: Services, targets: list[str], *, mode: str, start: int, now: int) -> dict[str, Any]:
    """Bring the rollups up to `now`: the maintenance job over everything, or the job's code for the targets."""
    t = time.perf_counter()
    if mode == "job":
        job = services.telemetry.maintain(now_ms=now, prune=False)["eu"]["rolled_up"]
        return {"mode": mode, "s": round(time.perf_counter() - t, 1), **job}
    r = services.telemetry.rollups
    with services.dbs.cell_session("eu") as s:
        hours: dict[int, dict[tuple[str, str, str | None], Stats]] = {}
        for did in targets:  # each hour's Stats from the device's raw rows (one read), then the job's own writes
            q = select(Sample.ts, Sample.value).where(Sample.did == did, Sample.key == KEY, Sample.ts >= start,
                                                      Sample.ts < bucket_start(now, HOUR)).order_by(Sample.ts)
            for h, st in bucketize([(ts, v) for ts, v in s.execute(q)], HOUR).items():
                hours.setdefault(h, {})[(did, KEY, None)] = st
        for h, stats in hours.items():
            r._replace(s, "eu", HOUR, h, [(d, k) for d, k, _ in stats], stats)
        opener = services.sealer.opener(s, "eu")
        pairs = {(d, KEY) for d in targets}
        for d in range(bucket_start(start, DAY), bucket_start(now, DAY), DAY):
            r._day(s, "eu", opener, d, pairs)  # days from their hours, as the job does
        set_mark(s, ROLLED_ID, int(s.scalar(select(func.max(Sample.id))) or 0))
        set_mark(s, COMPLETE_BEFORE, bucket_start(now, HOUR))
    return {"mode": mode, "s": round(time.perf_counter() - t, 1), "devices": len(targets)}


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpu": cpu, "nproc": os.cpu_count(),
            "load_avg": [round(x, 1) for x in os.getloadavg()], "python": platform.python_version()}


# --- SQLite ----------------------------------------------------------------------------------------------------


def sqlite_bench(args: argparse.Namespace, step: int, now: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        services = bootstrap(Settings(data_dir=Path(tmp), cells=["eu"], default_cell="eu"))
        start = now - args.days * DAY
        t = time.perf_counter()
        n = 0
        batch: list[dict[str, Any]] = []
        for did, ts, v in rows_of(args.devices, start=start, now=now, step=step):
            batch.append({"did": did, "key": KEY, "ts": ts, "value": v, "msg_id": n})
            n += 1
            if len(batch) >= BATCH:
                _append(services, batch)
        _append(services, batch)
        write_s = time.perf_counter() - t
        reader = Reader(services, targets(args), now, freeze=not args.no_freeze)
        raw30 = reader.measure(reader.chart30, args.reads)
        rolled = rollup(services, reader.targets, mode=_mode(args, n), start=start, now=now)
        roll30 = reader.measure(reader.chart30, args.reads)
        year = reader.measure(reader.year, args.reads)
        t = time.perf_counter()
        pruned = services.telemetry.retention.prune("eu", now_ms=now + (365 - args.days // 2) * DAY)
        prune_s = time.perf_counter() - t
        size = sum(f.stat().st_size for f in Path(tmp).glob("cell-eu.db*"))
        services.close()
    return {"backend": "sqlite", "samples": n, "write_rows_per_s": round(n / write_s), "db_bytes": size,
            "read_30d_500pts_raw": raw30, "rollups": rolled, "read_30d_500pts_rollup": roll30,
            "read_1y_daily_rollup": year, "raw_over_rollup_p50": round(raw30["p50_ms"] / roll30["p50_ms"], 1),
            "prune_half_s": round(prune_s, 1), "pruned": pruned.to_dict()}


def _append(services: Services, rows: list[dict[str, Any]]) -> None:
    if rows:
        with services.dbs.cell_session("eu") as s:
            services.telemetry.append(s, rows, [], {})
        rows.clear()


def targets(args: argparse.Namespace) -> list[str]:
    return [did_of(i * args.devices // args.targets) for i in range(args.targets)]


def _mode(args: argparse.Namespace, n: int) -> str:
    return args.rollups or ("targets" if n > 2_000_000 else "job")


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def pg_reads(args: argparse.Namespace, now: int) -> dict[str, Any]:
    """Only the rollup-backed reads again, on the two databases a `--keep` run left (`--reuse PREFIX`)."""
    out: dict[str, Any] = {"backend": "postgresql", "reused": args.reuse}
    with tempfile.TemporaryDirectory() as tmp:
        hubs = {kind: bootstrap(Settings(
            data_dir=Path(tmp) / kind, cells=["eu"], default_cell="eu",
            database={"url": f"sqlite:///{tmp}/{kind}-global.db",
                      "cell_url_template": f"{PG}/{args.reuse}_{kind}_{{cell}}"})) for kind in ("part", "flat")}
        try:
            for kind, h in hubs.items():
                r = Reader(h, targets(args), now, freeze=not args.no_freeze)
                out[f"{kind}_read_30d_500pts_rollup"] = r.measure(r.chart30, args.reads)
                out[f"{kind}_read_1y_daily_rollup"] = r.measure(r.year, args.reads)
        finally:
            for h in hubs.values():
                h.close()
    for read in ("read_30d_500pts_rollup", "read_1y_daily_rollup"):
        p, f = out[f"part_{read}"], out[f"flat_{read}"]
        out[f"part_over_flat_{read}"] = {q: round(p[q] / f[q], 2) for q in ("p50_ms", "p99_ms")}
    return out


def pg_bench(args: argparse.Namespace, step: int, now: int) -> dict[str, Any]:
    prefix = f"ecohub_bench_{secrets.token_hex(3)}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    names = [f"{prefix}_{kind}_eu" for kind in ("part", "flat")]
    with admin.connect() as c:
        for name in names:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        server = c.execute(text("SHOW server_version")).scalar()
    out: dict[str, Any] = {"backend": "postgresql", "server": server, "databases": names}
    try:
        flat_engine = create_engine(f"{PG}/{prefix}_flat_eu")
        upgrade_engine("cell", flat_engine, "0010")  # a cell before migration 0011 ...
        _stamp_head(flat_engine)  # ... that bootstrap must leave as it is
        flat_engine.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            hubs = {kind: bootstrap(Settings(
                data_dir=Path(tmp) / kind, cells=["eu"], default_cell="eu",
                database={"url": f"sqlite:///{tmp}/{kind}-global.db",
                          "cell_url_template": f"{PG}/{prefix}_{kind}_{{cell}}"})) for kind in ("part", "flat")}
            try:
                out.update(_pg_run(args, hubs, step, now))
            finally:
                for h in hubs.values():
                    h.close()
    finally:
        if not args.keep:
            with admin.connect() as c:
                for name in names:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return out


def _stamp_head(engine: Engine) -> None:
    from alembic import command

    with engine.begin() as conn:
        cfg = alembic_config("cell", engine)
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def _pg_run(args: argparse.Namespace, hubs: dict[str, Services], step: int, now: int) -> dict[str, Any]:
    part, flat = hubs["part"], hubs["flat"]
    start = now - args.days * DAY
    out: dict[str, Any] = {}
    part.telemetry.partitions.ensure("eu", now_ms=now, since_ms=start)
    pe, fe = part.dbs.cell_engines["eu"], flat.dbs.cell_engines["eu"]
    t = time.perf_counter()
    _without_keys(pe)
    n = _copy(pe, args.devices, start=start, now=now, step=step)
    out["samples"] = n
    out["copy_s"] = round(time.perf_counter() - t, 1)
    out["copy_rows_per_s"] = round(n / (time.perf_counter() - t))
    t = time.perf_counter()
    _with_keys(pe, pk="id, ts")
    out["part_keys_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    _without_keys(fe)
    _pipe(pe, fe)
    _with_keys(fe, pk="id")
    out["flat_copy_and_keys_s"] = round(time.perf_counter() - t, 1)
    with pe.connect() as c:
        out["partitions"] = c.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                           "'telemetry'::regclass")).scalar()
    out["bytes"] = {}
    for kind, e in (("part", pe), ("flat", fe)):
        with e.connect() as c:
            out["bytes"][kind] = c.execute(text("SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE "
                                                "relkind = 'r' AND relname LIKE 'telemetry%'")).scalar()
    readers = {k: Reader(h, targets(args), now, freeze=not args.no_freeze) for k, h in hubs.items()}
    for kind, r in readers.items():
        out[f"{kind}_read_30d_500pts_raw"] = r.measure(r.chart30, args.reads)
    out["explain_raw_30d"] = {k: _explain(h, targets(args)[0], now) for k, h in hubs.items()}
    for kind, h in hubs.items():
        out[f"{kind}_rollups"] = rollup(h, readers[kind].targets, mode=_mode(args, n), start=start, now=now)
    for kind, r in readers.items():
        out[f"{kind}_read_30d_500pts_rollup"] = r.measure(r.chart30, args.reads)
        out[f"{kind}_read_1y_daily_rollup"] = r.measure(r.year, args.reads)
    for read in ("read_30d_500pts_raw", "read_30d_500pts_rollup", "read_1y_daily_rollup"):
        p, f = out[f"part_{read}"], out[f"flat_{read}"]
        out[f"part_over_flat_{read}"] = {q: round(p[q] / f[q], 2) for q in ("p50_ms", "p99_ms")}
    return out


def _without_keys(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(text("ALTER TABLE telemetry DROP CONSTRAINT pk_telemetry"))
        for name, _ in INDEXES["telemetry"]:
            c.execute(text(f"DROP INDEX {name}"))


def _with_keys(engine: Engine, *, pk: str) -> None:
    with engine.begin() as c:
        c.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        c.execute(text(f"ALTER TABLE telemetry ADD CONSTRAINT pk_telemetry PRIMARY KEY ({pk})"))
        for name, cols in INDEXES["telemetry"]:
            c.execute(text(f"CREATE INDEX {name} ON telemetry ({cols})"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE telemetry"))


def _copy(engine: Engine, devices: int, *, start: int, now: int, step: int) -> int:
    """COPY the generated samples in, text format, ~8 MB per write."""
    n = 0
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
        with cur.copy("COPY telemetry (did, key, ts, value, msg_id) FROM STDIN") as copy:
            buf = io.StringIO()
            for did, ts, v in rows_of(devices, start=start, now=now, step=step):
                buf.write(f"{did}\t{KEY}\t{ts}\t{v}\t{n}\n")
                n += 1
                if n % 100_000 == 0:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        raw.commit()
    finally:
        raw.close()
    return n


def _pipe(src: Engine, dst: Engine) -> None:
    """The same rows (ids too) from one database into the other: COPY TO STDOUT piped into COPY FROM STDIN."""
    a, b = src.raw_connection(), dst.raw_connection()
    try:
        cols = "id, did, key, ts, value, msg_id, subject, sealed"
        with a.driver_connection.cursor() as ca, b.driver_connection.cursor() as cb, \
                ca.copy(f"COPY (SELECT {cols} FROM telemetry) TO STDOUT (FORMAT binary)") as out, \
                cb.copy(f"COPY telemetry ({cols}) FROM STDIN (FORMAT binary)") as into:  # type: ignore[union-attr]
            for chunk in out:
                into.write(chunk)
        with b.driver_connection.cursor() as cb:  # type: ignore[union-attr]
            cb.execute("SELECT setval('telemetry_id_seq', (SELECT max(id) FROM telemetry))")
        b.commit()
    finally:
        a.close()
        b.close()


def _explain(services: Services, did: str, now: int) -> dict[str, list[str]]:
    """EXPLAIN ANALYZE of the statements of a 30-day read from raw rows (`TelemetryService._opened`): the rows
    in the range, and the last value before it (the state the chart starts in)."""
    rows = ("SELECT ts, value, subject, sealed FROM telemetry WHERE did = :d AND key = :k AND ts >= :s AND ts <= :u "
            "ORDER BY ts, id")
    prior = ("SELECT ts, value, subject, sealed FROM telemetry WHERE did = :d AND key = :k AND ts < :s AND ts >= 0 "
             "ORDER BY ts DESC, id DESC LIMIT 1")
    out = {}
    with services.dbs.cell_engines["eu"].connect() as c:
        for name, q in (("rows", rows), ("prior", prior)):
            plan = c.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {q}"),
                             {"d": did, "k": KEY, "s": now - 30 * DAY, "u": now - 1})
            out[name] = [r[0] for r in plan]
    return out


def main() -> None:
    """Run the benchmark and print its figures as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--samples", type=int, default=None, help="total samples (sets the interval)")
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--interval-s", type=int, default=300, help="without --samples: seconds between samples")
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--targets", type=int, default=10, help="devices the reads cycle over")
    ap.add_argument("--rollups", choices=("job", "targets"), default=None)
    ap.add_argument("--keep", action="store_true", help="PostgreSQL: keep the bench databases")
    ap.add_argument("--no-freeze", action="store_true", help="leave the startup heap to the collector "
                    "(the hub freezes it: gc.freeze())")
    ap.add_argument("--reuse", default=None, help="PostgreSQL: only the rollup reads, on a kept run's databases "
                    "(their name prefix, ecohub_bench_XXXXXX)")
    args = ap.parse_args()
    args.targets = min(args.targets, args.devices)
    step = plan(args.devices, args.days, args.samples, args.interval_s)
    now = (int(time.time() * 1000) // DAY) * DAY
    info = {**machine(), "devices": args.devices, "days": args.days, "interval_s": step / 1000}
    if args.reuse:
        result = pg_reads(args, now)
    elif args.backend == "postgres":
        result = pg_bench(args, step, now)
    else:
        result = sqlite_bench(args, step, now)
    print(json.dumps({**info, **result}, indent=2, default=int))


if __name__ == "__main__":
    main()
