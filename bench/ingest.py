"""Ingest benchmark on NATS: messages/s persisted by ecohub's ingest workers ÷ the same broker's QoS 1 pass-through.

Each repeat, on a fresh data dir (SQLite, or throwaway PostgreSQL databases on 127.0.0.1:5432) and a fresh
device plane (`hub.enter_plane`: the supervised nats-server on free ports with JetStream + MQTT, the auth
callout, ingest's durable on `$MQTT_msgs`), the same load runs several times:

* load: D provisioned devices, one `mosquitto_pub -q 1 -l -M <inflight>` process each (C client, MQTT 3.1.1,
  client id = username = did, password = secret: every connect goes through the callout), N messages in total,
  each a `properties_changed` of 2 properties (one inbox row + two telemetry rows + twin upserts per message);
* reference: `mosquitto_sub -q 1 -C N` (service user) on `ecohub/+/up`: msg/s = N / (start of the load → the
  N-th message delivered to it). The durable on `$MQTT_msgs` exists (as in every hub) and keeps the messages, so
  the broker does the same store work as under ingest;
* ecohub, W workers: W ingest worker processes (`workers.WorkerPool`, what `ecohub ingest --workers W` runs) on
  the shared durable; msg/s = N / (start of the load → N new inbox rows committed in the database).
* ceiling (`--ceiling`): one process of plain nats-py (`pull_subscribe` + `fetch(1000)` + an explicit `ack()` per
  message, what ingest must do) on a durable of its own with ingest's filters, storing nothing: N / (start of the
  load → N acknowledged). What the NATS client library alone allows a Python worker on this machine, the upper
  bound of any ecohub figure (the issue's own measurement of it: 30k msg/s);
A warm-up of 2 messages per device precedes each timed run. Printed per repeat: the reference, each ecohub
figure and the ratios; then min/median/max over the repeats.

Usage::

    python bench/ingest.py [--db sqlite|postgresql|both] [--workers 1,2] [--messages 30000] [--devices 20]
                           [--repeats 3] [--inflight 100] [--subscribed K] [--ceiling]
    python bench/ingest.py --profile [--db sqlite|postgresql] [--messages 30000] [--top 30] [--cold]

`--profile`: the load is published first (the durable keeps it), then one worker drains the backlog in this
process, twice: without a profiler (CPU µs per message of this process, wall msg/s) and under cProfile (the top
functions by own time). The drain has no concurrent publishers, so its CPU per message is the worker's alone.
`--cold`: no device is answered from the credential cache (as in a fleet that reports less often than the cache
keeps an entry, 5 s): every batch reads its devices from the database.

`--subscribed K`: the devices belong to a user who granted K apps all of them, each app with a webhook (to a closed
local port: the workers only stage, nobody sends), so every message also writes one row of the apps' push outbox
inside the ingest transaction. Compare its ratio to the reference with a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from appfleet import grant_fleet
from natsbench import (
    CELL,
    MODEL,
    CpuMeter,
    Env,
    MosqLoad,
    drained,
    inbox_count,
    loadavg,
    machine,
    make_env,
    mmm,
    mosquitto_sub_counter,
    pg_databases,
    plane,
    telemetry_count,
    wait_until,
    waiting_pulls,
)


async def reference(env: Env, p: object, load: MosqLoad, messages: int, timeout: float) -> float:  # noqa: ASYNC109
    host, port = p.mqtt_endpoint  # type: ignore[attr-defined]
    warm = load.prepare(2 * len(env.creds))
    async with mosquitto_sub_counter(host, port, env.services.service_password, 2 * len(env.creds)) as sub:
        await load.run(warm)
        await asyncio.wait_for(sub.wait(), timeout)
    files = load.prepare(messages)
    async with mosquitto_sub_counter(host, port, env.services.service_password, messages) as sub:
        t0 = time.perf_counter()
        run = asyncio.create_task(load.run(files))
        await asyncio.wait_for(sub.wait(), timeout)
        seconds = time.perf_counter() - t0
        await run
    return messages / seconds


CEILING = """
import asyncio, sys, time
import nats
from nats.js.api import AckPolicy, ConsumerConfig

async def main(url, password, n):
    nc = await nats.connect(url, user=sys.argv[4], password=password)
    js = nc.jetstream()
    cfg = ConsumerConfig(durable_name="bench-ceiling", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=10_000,
                         filter_subjects=["$MQTT.msgs.ecohub.*.up", "$MQTT.msgs.ecohub.*.state"])
    await js.add_consumer("$MQTT_msgs", cfg)
    sub = await js.pull_subscribe_bind(durable="bench-ceiling", stream="$MQTT_msgs")
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    got = 0
    while got < n:
        try:
            msgs = await sub.fetch(1000, timeout=1)
        except TimeoutError:  # nats.errors.TimeoutError, or asyncio's when fetch's deadline passed
            continue
        for m in msgs:
            await m.ack()
        got += len(msgs)
    await nc.flush()
    print("done", flush=True)
    await js.delete_consumer("$MQTT_msgs", "bench-ceiling")
    await nc.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def ceiling(env: Env, p: object, load: MosqLoad, messages: int, timeout: float) -> float:  # noqa: ASYNC109
    """A bare nats-py consumer in its own process: fetch and acknowledge, nothing stored → msg/s."""
    from ecohub.connect.plane import SERVICE_USER

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CEILING, p.urls[0], env.services.service_password,  # type: ignore[attr-defined]
        str(messages), SERVICE_USER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() != b"ready":
            raise RuntimeError("the ceiling consumer did not start")
        files = load.prepare(messages)
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        t0 = time.perf_counter()
        run = asyncio.create_task(load.run(files))
        if (await asyncio.wait_for(proc.stdout.readline(), timeout)).strip() != b"done":
            raise RuntimeError("the ceiling consumer stopped early")
        seconds = time.perf_counter() - t0
        await run
        await asyncio.wait_for(proc.wait(), 30)
        return messages / seconds
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def ecohub(env: Env, p: object, load: MosqLoad, messages: int, workers: int,
                 timeout: float) -> tuple[float, float]:  # noqa: ASYNC109
    """→ (persisted msg/s, publishers' msg/s until their last PUBACK)."""
    from ecohub.workers import WorkerPool

    pool = WorkerPool(env.services.settings, broker_url=p.urls[0], workers=workers)  # type: ignore[attr-defined]
    pool.start()
    try:
        if not await wait_until(lambda: _ge(waiting_pulls(p), workers), within=60, step=0.1):
            raise RuntimeError(f"{workers} ingest workers did not bind within 60 s")
        # what earlier runs left on the durable (the reference's messages), then a warm-up, are ingested first
        warm = load.prepare(2 * len(env.creds))
        await load.run(warm)
        if not await wait_until(lambda: drained(p), within=timeout, step=0.1):
            raise RuntimeError("the backlog and warm-up messages were not ingested")
        await asyncio.sleep(0.2)
        base = await asyncio.to_thread(inbox_count, env.services)
        files = load.prepare(messages)
        meter = CpuMeter({"workers": [pr.pid for pr in pool.procs.values()],
                          "nats-server": [p.server.proc.pid],  # type: ignore[attr-defined]
                          "plane process (callout)": [os.getpid()]})
        meter.start()
        t0 = time.perf_counter()
        run = asyncio.create_task(load.run(files))
        ok = await wait_until(lambda: asyncio.to_thread(lambda: inbox_count(env.services) >= base + messages),
                              within=timeout, step=0.02)
        seconds = time.perf_counter() - t0
        meter.stop()
        print(f"    {workers} worker(s): {meter.render(messages)}", flush=True)
        send_s = await run
        if not ok:
            raise RuntimeError(f"only {await asyncio.to_thread(inbox_count, env.services) - base} of {messages} "
                               f"persisted within {timeout} s")
        return messages / seconds, messages / send_s
    finally:
        await asyncio.to_thread(pool.stop)


def outbox_count(services: object) -> int:
    from sqlalchemy import func, select

    from ecohub.apps.models import PushOutbox

    with services.dbs.cell_session(CELL) as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(PushOutbox)) or 0)


async def _ge(coro: object, n: int) -> bool:
    return bool(await coro >= n)  # type: ignore[operator]


async def one_repeat(db: str, args: argparse.Namespace, tmp: Path, k: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        urls = stack.enter_context(pg_databases("bench_ingest")) if db == "postgresql" else None
        env = make_env(tmp / f"{db}-{k}", 0 if args.subscribed else args.devices, urls,
                       webhooks={"allow_private": True})
        if args.subscribed:
            from ecohub.hub import free_port

            devices = env.services.devices.provision(model=MODEL, count=args.devices, cell=CELL)
            grant_fleet(env.services, devices, [f"http://127.0.0.1:{free_port()}/hook"] * args.subscribed)
            env.creds += [(d.did, d.secret) for d in devices]
        try:
            async with plane(env.services) as p:
                host, port = p.mqtt_endpoint
                load = MosqLoad(host, port, env.creds, env.workdir, inflight=args.inflight)
                out["reference"] = await reference(env, p, load, args.messages, args.timeout)
                print(f"  [{db} #{k + 1}, load {loadavg()}] reference mosquitto_pub → NATS → mosquitto_sub QoS 1: "
                      f"{out['reference']:8.0f} msg/s", flush=True)
                if args.ceiling:
                    out["ceiling"] = await ceiling(env, p, load, args.messages, args.timeout)
                    print(f"  [{db} #{k + 1}, load {loadavg()}] ceiling: bare nats-py fetch + ack, nothing stored: "
                          f"{out['ceiling']:8.0f} msg/s = {out['ceiling'] / out['reference']:.2f} x reference",
                          flush=True)
                for w in args.workers:
                    rate, pub = await ecohub(env, p, load, args.messages, w, args.timeout)
                    out[f"w{w}"], out[f"pub{w}"] = rate, pub
                    print(f"  [{db} #{k + 1}, load {loadavg()}] ecohub {w} worker(s) persisted: {rate:8.0f} msg/s "
                          f"= {rate / out['reference']:.2f} x reference (publishers' PUBACK rate {pub:.0f} msg/s)",
                          flush=True)
            rows = await asyncio.to_thread(inbox_count, env.services)
            samples = await asyncio.to_thread(telemetry_count, env.services)
            expected = (1 + len(args.workers)) * (args.messages + 2 * len(env.creds)) + args.ceiling * args.messages
            print(f"    rows: inbox {rows} (expected {expected}), telemetry {samples} "
                  f"(expected {2 * expected}){'' if rows == expected else '  MISMATCH'}", flush=True)
            if args.subscribed:
                staged = await asyncio.to_thread(outbox_count, env.services)
                print(f"    push outbox: {staged} rows staged (expected {expected})", flush=True)
        finally:
            env.services.close()
    return out


async def drain(env: Env, p: object, load: MosqLoad, messages: int, timeout: float,  # noqa: ASYNC109
                profiler: object | None = None) -> tuple[float, float]:
    """Publish `messages`, then let one in-process worker drain them → (CPU µs/msg of this process, msg/s)."""
    await load.run(load.prepare(messages))
    base = await asyncio.to_thread(inbox_count, env.services)
    worker = env.services.ingest_worker(p.nc)  # type: ignore[attr-defined]
    write = worker._write
    in_write = [0.0]

    def timed_write(*a: object) -> object:  # the write thread's own CPU (cProfile sees only the loop's thread)
        c = time.thread_time()
        try:
            if profiler is not None:
                return write_prof.runcall(write, *a)
            return write(*a)
        finally:
            in_write[0] += time.thread_time() - c

    if profiler is not None:
        import cProfile

        write_prof = cProfile.Profile()
        drain.write_profile = write_prof  # type: ignore[attr-defined]
    worker._write = timed_write  # type: ignore[method-assign]
    cpu0, t0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()  # type: ignore[attr-defined]
    task = asyncio.create_task(worker.run(), name="bench-drain")
    try:
        ok = await wait_until(lambda: worker.stats.stored >= messages, within=timeout, step=0.005)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if profiler is not None:
            profiler.disable()  # type: ignore[attr-defined]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    stored = await asyncio.to_thread(inbox_count, env.services) - base
    if not ok or stored != messages:
        raise RuntimeError(f"drain: {stored} of {messages} persisted")
    drain.last_write_us = 1e6 * in_write[0] / messages  # type: ignore[attr-defined]
    drain.last_batches = worker.stats.batches  # type: ignore[attr-defined]
    return 1e6 * cpu / messages, messages / wall


async def profile(args: argparse.Namespace) -> int:
    import cProfile
    import io
    import pstats

    db = "postgresql" if args.db == "postgresql" else "sqlite"
    print(f"ecohub ingest drain profile on {db}: {args.messages} messages from {args.devices} devices, one "
          f"in-process worker{', every device uncached' if args.cold else ''}")
    if args.cold:
        from ecohub.connect import service as device_service

        device_service.CRED_CACHE_S = 0.0  # type: ignore[misc]
    print("machine:\n  " + machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="ecohub-bench-profile-") as tmp, contextlib.ExitStack() as stack:
        urls = stack.enter_context(pg_databases("bench_prof")) if db == "postgresql" else None
        env = make_env(Path(tmp) / db, args.devices, urls)
        try:
            async with plane(env.services) as p:
                load = MosqLoad(*p.mqtt_endpoint, env.creds, env.workdir, inflight=args.inflight)
                await drain(env, p, load, 2 * len(env.creds), args.timeout)  # warm-up: caches, prepared statements
                runs = []
                for k in range(args.repeats):
                    cpu, rate = await drain(env, p, load, args.messages, args.timeout)
                    runs.append((cpu, rate))
                    print(f"  [drain #{k + 1}, load {loadavg()}] {cpu:.1f} CPU µs/msg (this process; of it "
                          f"{drain.last_write_us:.1f} in the write), {rate:.0f} msg/s, "  # type: ignore[attr-defined]
                          f"{drain.last_batches} batches", flush=True)  # type: ignore[attr-defined]
                print(f"  CPU µs/msg min / median / max: {mmm([r[0] for r in runs], '{:.1f}')}; "
                      f"msg/s {mmm([r[1] for r in runs])}")
                if not args.top:
                    return 0
                prof = cProfile.Profile()
                await drain(env, p, load, args.messages, args.timeout, prof)
        finally:
            env.services.close()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    out = io.StringIO()
    print("the write (in its thread), by own time:")
    pstats.Stats(drain.write_profile, stream=out).sort_stats("tottime").print_stats(args.top)  # type: ignore
    print(out.getvalue())
    return 0


async def bench(args: argparse.Namespace) -> int:
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"ecohub ingest on NATS: {args.messages} QoS 1 messages from {args.devices} devices (one mosquitto_pub "
          f"each, {args.inflight} in flight), workers {args.workers}, {args.repeats} repeats, "
          f"{args.subscribed} app webhook(s) on every device")
    print("machine:\n  " + machine(), flush=True)
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ecohub-bench-ingest-") as tmp:
        for db in dbs:
            results[db] = [await one_repeat(db, args, Path(tmp), k) for k in range(args.repeats)]
    print("\n| db | figure | min / median / max |\n|---|---|---|")
    for db, runs in results.items():
        print(f"| {db} | reference msg/s | {mmm([r['reference'] for r in runs])} |")
        if args.ceiling:
            print(f"| {db} | ceiling (bare nats-py fetch + ack) ÷ reference | "
                  f"{mmm([r['ceiling'] / r['reference'] for r in runs], '{:.2f}')} |")
        for w in args.workers:
            print(f"| {db} | ecohub {w} worker(s) persisted msg/s | {mmm([r[f'w{w}'] for r in runs])} |")
            print(f"| {db} | ecohub {w} worker(s) ÷ reference | "
                  f"{mmm([r[f'w{w}'] / r['reference'] for r in runs], '{:.2f}')} |")
        ws = sorted(args.workers)
        for w in ws[1:]:
            print(f"| {db} | {w} workers ÷ {ws[0]} worker(s) | "
                  f"{mmm([r[f'w{w}'] / r[f'w{ws[0]}'] for r in runs], '{:.2f}')} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", default="1", help="comma list of worker counts to run, e.g. 1,2 (default 1)")
    parser.add_argument("--messages", type=int, default=30_000, help="messages per timed run (default 30000)")
    parser.add_argument("--devices", type=int, default=20, help="devices = publisher processes (default 20)")
    parser.add_argument("--inflight", type=int, default=100, help="unacknowledged QoS 1 publishes per device")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per timed run")
    parser.add_argument("--profile", action="store_true", help="drain a backlog in-process, then under cProfile")
    parser.add_argument("--top", type=int, default=30, help="--profile: functions listed (0: no cProfile run)")
    parser.add_argument("--cold", action="store_true",
                        help="--profile: no device answered from the credential cache (a fleet reporting less often "
                             "than every 5 s)")
    parser.add_argument("--ceiling", action="store_true", help="also measure a bare nats-py consumer (no storage)")
    parser.add_argument("--subscribed", type=int, default=0, help="apps with a webhook on every device (default 0)")
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    return asyncio.run(profile(args) if args.profile else bench(args))


if __name__ == "__main__":
    sys.exit(main())
