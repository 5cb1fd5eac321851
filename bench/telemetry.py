"""Telemetry reads at scale on SQLite: a 30-day chart of one device (500 points) from raw rows and from rollups,
a 1-year read from the daily rollups, and what the maintenance job costs.

    PYTHONPATH=src python bench/telemetry.py [--devices 20] [--days 90] [--interval-s 300] [--reads 50]

Samples are generated with the ingest write path (`TelemetryService.append`, one executemany per batch) into a
fresh SQLite data dir, unbound (plain) unless `--sealed`. Prints JSON; the ratios are raw ÷ rollup read time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ecohub.bootstrap import Services, bootstrap
from ecohub.settings import Settings
from ecohub.telemetry.domain import DAY

BATCH = 5000


def generate(services: Services, dids: list[str], *, days: int, interval_s: int, now: int) -> int:
    """Power readings of every device, one per interval over `days`, oldest first; returns the number written."""
    start = now - days * DAY
    step = interval_s * 1000
    n = 0
    rows: list[dict[str, Any]] = []
    for t in range(start, now, step):
        for i, did in enumerate(dids):
            rows.append({"did": did, "key": "11.2", "ts": t + i, "value": float((t // step + i) % 500), "msg_id": n})
            n += 1
            if len(rows) >= BATCH:
                _flush(services, rows)
    _flush(services, rows)
    return n


def _flush(services: Services, rows: list[dict[str, Any]]) -> None:
    if rows:
        with services.dbs.cell_session("eu") as s:
            services.telemetry.append(s, rows, [], {})
            s.commit()
        rows.clear()


def timed(fn: Any, reads: int) -> dict[str, float]:
    """p50/p99/max in ms of `reads` calls."""
    ms = []
    for _ in range(reads):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "max_ms": round(ms[-1], 2)}


def main() -> None:
    """Run the benchmark and print its figures as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--interval-s", type=int, default=300)
    ap.add_argument("--reads", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services = bootstrap(Settings(data_dir=Path(tmp), cells=["eu"], default_cell="eu"))
        dids = [f"eu-bench{i:05d}" for i in range(args.devices)]
        now = (int(time.time() * 1000) // DAY) * DAY
        t = time.perf_counter()
        n = generate(services, dids, days=args.days, interval_s=args.interval_s, now=now)
        write_s = time.perf_counter() - t
        target = dids[len(dids) // 2]

        def chart(since: int) -> dict[str, Any]:
            return services.telemetry.downsample("eu", target, "11.2", since=since, until=now - 1, points=500)

        raw30 = timed(lambda: chart(now - 30 * DAY), args.reads)
        t = time.perf_counter()
        job = services.telemetry.maintain(now_ms=now, prune=False)
        job_s = time.perf_counter() - t
        sample = chart(now - 30 * DAY)
        roll30 = timed(lambda: chart(now - 30 * DAY), args.reads)
        year = services.telemetry.downsample("eu", target, "11.2", since=now - 365 * DAY, until=now - 1, bucket="1d")
        roll365 = timed(lambda: services.telemetry.downsample("eu", target, "11.2", since=now - 365 * DAY,
                                                              until=now - 1, bucket="1d"), args.reads)
        t = time.perf_counter()
        pruned = services.telemetry.retention.prune("eu", now_ms=now + (365 - args.days // 2) * DAY)
        prune_s = time.perf_counter() - t
        services.close()
    print(json.dumps({
        "samples": n, "devices": args.devices, "days": args.days, "interval_s": args.interval_s,
        "write_rows_per_s": round(n / write_s), "read_30d_500pts_raw": raw30, "read_30d_500pts_rollup": roll30,
        "points_30d": len(sample["points"]), "source_30d": sample["source"], "bucket_30d": sample["bucket"],
        "read_1y_daily_rollup": roll365, "points_1y": len(year["points"]), "source_1y": year["source"],
        "raw_over_rollup_p50": round(raw30["p50_ms"] / roll30["p50_ms"], 1),
        "rollup_job_s": round(job_s, 1), "rolled_up": job["eu"]["rolled_up"],
        "prune_half_s": round(prune_s, 1), "pruned": pruned.to_dict(),
    }, indent=2))


if __name__ == "__main__":
    main()
