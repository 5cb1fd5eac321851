"""Device plane capacity on NATS: provisioning rate by fleet size, connect rate through the auth callout, devices held.

One data dir (SQLite by default, or throwaway PostgreSQL databases) and one device plane as `ecohub up` runs it
(`hub.enter_plane`: the supervised nats-server with JetStream + MQTT on free ports, this process answering the
auth callout through `DeviceService.verify`), then:

1. **provisioning** at fleet sizes 0 / 10k / 100k (`--levels`): the fleet is grown to each level in bulk
   (`DeviceService.provision(count=10000)`), then measured: `--single` calls of `provision(count=1)` (one device
   per call, what `POST /api/v1/devices` does) and `--batches` calls of `provision(count=1000)`. Before and after
   each level the nats-server config file and its JetStream store are checked: provisioning writes no broker state.
2. **connect rate** (at the largest level, so `verify` looks the did up in a table of that size): `--connects`
   MQTT 3.1.1 connect → CONNACK → disconnect (paho, in a separate process so it does not share this process's
   GIL with the callout responder), sequential and 8 threads; reference in the same run: the same connects as the
   hub's service user (a static NATS user: no callout). Repeated `--repeats` times.
3. **devices held by one node**: P load processes open raw-socket MQTT 3.1.1 sessions (CONNECT with did/secret
   through the callout, then SUBSCRIBE to the device's own `down` at QoS 1, as the device SDK does), at most C
   connects in flight per process, until `--hold-devices` are connected or the fd limit stops them; then they are
   held for `--hold` s and counted again (the server's `/varz` connections). RSS of nats-server and of this
   process are printed.

Usage::

    python bench/connections.py [--db sqlite|postgresql] [--levels 0,10000,100000] [--connects 500]
                                [--hold-devices 19900] [--processes 4] [--concurrency 50] [--hold 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from natsbench import CELL, MODEL, lift_consumer_limit, loadavg, machine, make_env, mmm, pg_databases, plane


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------------------------------- provisioning


def broker_state(server: Any) -> tuple[float, int]:
    """(mtime of the nats-server config, bytes under its JetStream store): what provisioning must not change."""
    store = server.data_dir
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file() and "jetstream" in f.parts)
    return server.conf_file.stat().st_mtime, size


def provision_level(services: Any, single: int, batches: int) -> tuple[float, float, float]:
    """(single-device calls/s, devices/s in batches of 1000, CPU µs of this thread per single call): the CPU
    figure moves much less than the rates with other load on the machine."""
    t, cpu = time.perf_counter(), time.thread_time()
    for _ in range(single):
        services.devices.provision(model=MODEL, count=1, cell=CELL)
    single_rate = single / (time.perf_counter() - t)
    single_cpu = (time.thread_time() - cpu) / single * 1e6
    t = time.perf_counter()
    for _ in range(batches):
        services.devices.provision(model=MODEL, count=1000, cell=CELL)
    batch_rate = batches * 1000 / (time.perf_counter() - t)
    return single_rate, batch_rate, single_cpu


# -------------------------------------------------------------------------------------------- connect rate


def _connect_once(host: str, port: int, cid: str, user: str, pw: str) -> bool:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, pw)
    ok: list[bool] = []
    c.on_connect = lambda *a: ok.append(not a[3].is_failure)
    c.connect(host, port, keepalive=30)
    deadline = time.monotonic() + 5
    while not ok and time.monotonic() < deadline:
        c.loop(0.01)
    c.disconnect()
    c.loop(0.01)
    return bool(ok and ok[0])


def connect_rate(host: str, port: int, creds: list[tuple[str, str, str]], threads: int) -> tuple[float, int]:
    """(connects/s, failures) over creds with `threads` threads (runs in a child process)."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as ex:
        results = list(ex.map(lambda c: _connect_once(host, port, *c), creds))
    return len(creds) / (time.monotonic() - t0), results.count(False)


# ------------------------------------------------------------------------------------------ held devices


def _s(v: str) -> bytes:
    b = v.encode()
    return struct.pack("!H", len(b)) + b


def _packet(kind: int, body: bytes) -> bytes:
    n, rem = len(body), b""
    while True:
        d, n = n % 128, n // 128
        rem += bytes([d | (0x80 if n else 0)])
        if not n:
            return bytes([kind]) + rem + body


async def hold_one(host: str, port: int, did: str, secret: str, keepalive: int,
                   qos: int = 1) -> asyncio.StreamWriter | None:
    """A raw MQTT 3.1.1 device session: CONNECT (clean, did/secret) → CONNACK 0 → SUBSCRIBE own down QoS 1 → SUBACK."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(_packet(0x10, _s("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
                             + _s(did) + _s(did) + _s(secret)))
        connack = await asyncio.wait_for(reader.readexactly(4), 30)
        if connack[0] != 0x20 or connack[3] != 0:
            writer.close()
            return None
        writer.write(_packet(0x82, struct.pack("!H", 1) + _s(f"ecohub/{did}/down") + bytes([qos])))
        suback = await asyncio.wait_for(reader.readexactly(5), 30)
        if suback[0] != 0x90 or suback[4] not in (0, 1):
            writer.close()
            return None
        return writer
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        writer.close()
        return None


async def _hold(host: str, port: int, creds: list[tuple[str, str]], concurrency: int, go: Any, stop: Any,
                out: Any, qos: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, go.wait)
    t0 = time.perf_counter()
    held: list[asyncio.StreamWriter] = []
    failed = 0

    async def one(did: str, secret: str) -> None:
        nonlocal failed
        async with gate:
            w = await hold_one(host, port, did, secret, keepalive=900, qos=qos)
        if w is None:
            failed += 1
        else:
            held.append(w)

    await asyncio.gather(*(one(d, s) for d, s in creds))
    out.put(("ready", len(held), failed, time.perf_counter() - t0))
    await loop.run_in_executor(None, stop.wait, 900)
    alive = sum(1 for w in held if not w.is_closing())
    out.put(("alive", alive))
    for w in held:
        w.close()


def hold_main(host: str, port: int, creds: list[tuple[str, str]], concurrency: int, go: Any, stop: Any,
              out: Any, qos: int = 1) -> None:
    raise_fd_limit()
    try:
        asyncio.run(_hold(host, port, creds, concurrency, go, stop, out, qos))
    except BaseException as err:
        out.put(("error", repr(err)))
    finally:
        os._exit(0)


def varz(server: Any) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{server.host}:{server.monitor_port}/varz", timeout=5) as r:
        return dict(json.loads(r.read()))


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


# ---------------------------------------------------------------------------------------------------- run


async def bench(args: argparse.Namespace) -> int:
    fd = raise_fd_limit()
    if args.lift_consumer_limit:
        lift_consumer_limit()
        print("nats-server config: jetstream { limits { default_max_consumers: -1 } } (--lift-consumer-limit)")
    print(f"ecohub device plane capacity on NATS ({args.db}): provisioning at {args.levels}, connect rate "
          f"({args.connects} connects x {args.repeats}), up to {args.hold_devices} devices held")
    print("machine:\n  " + machine() + f"\n  this process's fd limit raised to {fd}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ecohub-bench-conn-") as tmp, contextlib.ExitStack() as stack:
        urls = stack.enter_context(pg_databases("bench_conn")) if args.db == "postgresql" else None
        env = make_env(Path(tmp) / "env", 0, urls)
        services = env.services
        creds: list[tuple[str, str]] = []
        try:
            async with plane(services) as p:
                server = p.server
                assert server is not None
                print("\n1. provisioning (devices/s; target >= 1000, flat)")
                prov: dict[int, tuple[float, float]] = {}
                for level in args.levels:
                    t = time.perf_counter()
                    grown = 0
                    have = len(creds)
                    while len(creds) < level:
                        batch = services.devices.provision(model=MODEL, count=min(10_000, level - len(creds)),
                                                           cell=CELL)
                        creds += [(d.did, d.secret) for d in batch]
                        grown += len(batch)
                    fill = grown / (time.perf_counter() - t) if grown else float("nan")
                    before = broker_state(server)
                    rates = [await asyncio.to_thread(provision_level, services, args.single, args.batches)
                             for _ in range(args.repeats)]
                    after = broker_state(server)
                    # the measured devices count too (their secrets are not kept: they are not used below)
                    creds_count = len(creds) + args.repeats * (args.single + 1000 * args.batches)
                    singles, batched = [r[0] for r in rates], [r[1] for r in rates]
                    prov[level] = (statistics.median(singles), statistics.median(batched))
                    print(f"  [{level:>7} devices before, load {loadavg()}] provision(count=1): {mmm(singles)} /s "
                          f"({mmm([r[2] for r in rates])} CPU-µs per call); "
                          f"provision(count=1000): {mmm(batched)} /s (min/median/max of {args.repeats}); "
                          f"bulk fill {have}→{level}: {fill:.0f} /s; broker config mtime "
                          f"{'unchanged' if before[0] == after[0] else 'CHANGED'}, JetStream store "
                          f"{before[1]} → {after[1]} bytes; fleet now {creds_count}", flush=True)
                base = args.levels[0]
                for level, (single, batched) in prov.items():
                    print(f"  level {level}: single {single:.0f} /s ({single / prov[base][0]:.2f} x level {base}), "
                          f"batch {batched:.0f} /s ({batched / prov[base][1]:.2f} x)")

                print(f"\n2. connect rate (connect → CONNACK → disconnect, paho in a child process), fleet "
                      f"{len(creds)} in the database")
                host, port = p.mqtt_endpoint
                svc = [(f"svc-{i}", "ecohub-service", services.service_password) for i in range(args.connects)]
                figs: dict[str, list[float]] = {}
                ctx = mp.get_context("spawn")
                with ProcessPoolExecutor(1, mp_context=ctx) as ex:
                    loop = asyncio.get_running_loop()
                    for rep in range(args.repeats):
                        sample = creds[rep * args.connects:(rep + 1) * args.connects]
                        devs = [(d, d, s) for d, s in sample]
                        for label, cs in (("device via callout", devs), ("static service user", svc)):
                            for threads in (1, 8):
                                r, failed = await loop.run_in_executor(ex, connect_rate, host, port, cs, threads)
                                figs.setdefault(f"{label}, {threads} thread(s)", []).append(r)
                                print(f"  [#{rep + 1}, load {loadavg()}] {label}, {threads} thread(s): {r:.0f} "
                                      f"connects/s{f', {failed} FAILED' if failed else ''}", flush=True)
                for k, v in figs.items():
                    print(f"  {k}: {mmm(v)} connects/s (min / median / max)")
                for threads in (1, 8):
                    ratios = [a / b for a, b in zip(figs[f"device via callout, {threads} thread(s)"],
                                                    figs[f"static service user, {threads} thread(s)"], strict=True)]
                    cost = [1000 / a - 1000 / b for a, b in zip(figs[f"device via callout, {threads} thread(s)"],
                                                               figs[f"static service user, {threads} thread(s)"],
                                                               strict=True)]
                    print(f"  callout ÷ static, {threads} thread(s): {mmm(ratios, '{:.2f}')}; callout cost "
                          f"{mmm(cost, '{:.2f}')} ms per connect")
                if p.responder is not None:
                    print(f"  callout responder stats: {p.responder.stats}")

                if args.hold_devices:
                    await hold(args, p, server, creds)
        finally:
            services.close()
    return 0


async def hold(args: argparse.Namespace, p: Any, server: Any, creds: list[tuple[str, str]]) -> None:
    n = min(args.hold_devices, len(creds))
    print(f"\n3. devices held by one node: {n} raw MQTT sessions (CONNECT via callout + SUBSCRIBE own down "
          f"QoS {args.sub_qos}) "
          f"from {args.processes} processes, {args.concurrency} connects in flight each; nats-server fd limit "
          f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]} (inherited)")
    host, port = p.mqtt_endpoint
    ctx = mp.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    chunk = creds[:n]
    procs = [ctx.Process(target=hold_main, args=(host, port, chunk[k::args.processes], args.concurrency, go, stop, out,
                                                       args.sub_qos),
                         daemon=True) for k in range(args.processes)]
    for pr in procs:
        pr.start()
    await asyncio.sleep(3.0)  # the processes import and wait for go
    base_conns = varz(server)["connections"]
    rss0 = rss_mib(server.proc.pid)
    t0 = time.perf_counter()
    go.set()
    loop = asyncio.get_running_loop()
    ready = []
    samples = []
    while len(ready) < len(procs):
        try:
            msg = await loop.run_in_executor(None, out.get, True, 1.0)
        except Exception:
            samples.append((time.perf_counter() - t0, varz(server)["connections"] - base_conns))
            if time.perf_counter() - t0 > args.hold_timeout:
                print("  TIMEOUT waiting for the load processes")
                break
            continue
        if msg[0] == "error":
            print(f"  a load process failed: {msg[1]}")
            ready.append((0, 0, 0.0))
        else:
            ready.append(msg[1:])
    wall = time.perf_counter() - t0
    connected = sum(r[0] for r in ready)
    failed = sum(r[1] for r in ready)
    v = varz(server)
    print(f"  [load {loadavg()}] connected {connected}, failed {failed}, in {wall:.1f} s = {connected / wall:.0f} "
          f"devices/s overall; server connections {v['connections']} (base {base_conns}); nats-server RSS "
          f"{rss0:.0f} → {rss_mib(server.proc.pid):.0f} MiB "
          f"({1024 * (rss_mib(server.proc.pid) - rss0) / max(1, connected):.1f} KiB/device), this process (callout) "
          f"RSS {rss_mib(os.getpid()):.0f} MiB", flush=True)
    marks = [f"{t:.0f}s:{c}" for t, c in samples[::max(1, len(samples) // 12)]]
    print(f"  server connections over time: {' '.join(marks)}")
    await asyncio.sleep(args.hold)
    v = varz(server)
    stop.set()
    alive = 0
    for _ in procs:
        with contextlib.suppress(Exception):
            msg = await loop.run_in_executor(None, out.get, True, 30)
            if msg[0] == "alive":
                alive += msg[1]
    print(f"  after {args.hold:.0f} s hold: server connections {v['connections']}, load processes see {alive} open; "
          f"nats-server RSS {rss_mib(server.proc.pid):.0f} MiB, cpu {v.get('cpu')}%, mem {v.get('mem', 0) / 2**20:.0f}"
          f" MiB", flush=True)
    for pr in procs:
        pr.join(10)
        if pr.is_alive():
            pr.terminate()
    errors: dict[str, int] = {}
    for line in server.log_file.read_text(errors="replace").splitlines():
        if "[ERR]" in line:
            key = line.split(" - ")[-1].split(": err=")[-1][:90]
            errors[key] = errors.get(key, 0) + 1
    print(f"  nats-server [ERR] lines by reason: {json.dumps(errors) if errors else 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--levels", default="0,10000,100000", help="fleet sizes to measure provisioning at")
    parser.add_argument("--single", type=int, default=300, help="provision(count=1) calls per measurement")
    parser.add_argument("--batches", type=int, default=2, help="provision(count=1000) calls per measurement")
    parser.add_argument("--connects", type=int, default=500, help="connects per connect-rate measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hold-devices", type=int, default=19_900, help="sessions to open (0: skip)")
    parser.add_argument("--processes", type=int, default=4, help="load processes holding the sessions")
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight per load process")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to hold the sessions")
    parser.add_argument("--hold-timeout", type=float, default=300.0)
    parser.add_argument("--sub-qos", type=int, choices=[0, 1], default=0,
                        help="QoS of each held session's down subscription (0, as the SDK; 1: a JetStream consumer "
                             "each, what the SDK did before docs/protocol.md moved `down` to QoS 0)")
    parser.add_argument("--lift-consumer-limit", action="store_true",
                        help="render the server config with jetstream.limits.default_max_consumers -1 (nats-server "
                             "2.15 caps a stream at 1000 consumers by default: one per QoS 1 device subscription)")
    args = parser.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",")]
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
