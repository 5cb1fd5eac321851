"""Command round-trip benchmark on NATS: API → device → reply latency at 1k connected devices, next to raw MQTT.

* a hub (``running_hub``, what ``ecohub up`` runs: the supervised nats-server with MQTT on free ports, the auth
  callout, an ingest worker, the command service over NATS, the HTTP API) runs in this process;
* D device-SDK ``SimulatedDevice`` instances (default 1000, MQTT 3.1.1, did/secret) run in a separate process;
* a driver process measures, against random devices:
  - **API**: ``POST /api/v1/devices/{did}/commands`` ``get_properties`` (httpx, operator token) — the hub validates,
    records the command, publishes on ``down``, waits for the device's reply on ``up``, records it, answers;
  - **raw MQTT** (the reference): one plain gmqtt client of the service user, subscribed to ``ecohub/+/up``,
    publishes the same ``get_properties`` request on a device's ``down`` topic and waits for its reply;
  - **HTTP floor** (the second reference): ``GET /api/v1/health`` through the same hub (server, middleware,
    router, event loop) and the same httpx driver, no token, no database, no device: what any API call costs here;
  each first sequentially (one request at a time), then with K concurrent requesters; the whole sequence is
  repeated ``--repeats`` times on the same hub and devices (min/median/max of the p99s are printed).

Printed: p50/p90/p99/max per mode, the API ÷ raw ratio (same run), the CPU (user + system, psutil) that the hub
process (all its threads), its nats-server, the device process and the driver spent per request in each phase (it
moves much less with other load on the machine than the latencies do; in the raw MQTT phases the hub's share is
the reply's way through ingest), and, when the API p99 misses the target (20 ms), a cProfile of the hub process
during the sequential API phase (``--profile``).

Usage::

    python bench/commands.py [--devices 1000] [--requests 500] [--concurrency 8] [--repeats 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import httpx
from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.domain import SERVICE_USER
from ecohub.hub import running_hub
from ecohub.protocol import Topic
from ecohub.protocol.messages import DownMessage, decode_up, encode
from ecohub.sdk.simulator import SimulatedDevice
from ecohub.settings import Settings
from ecohub.spec import parse_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from natsbench import CELL, DEFINITION, HOST, MODEL, SPEC_FILE, CpuMeter, machine, mmm

from ecohub.hub import free_port


def raise_fd_limit() -> None:
    """Soft fd limit up to the hard one (1000 devices in one process need more than the default 1024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

GET = [{"siid": 2, "piid": 1}, {"siid": 11, "piid": 2}]  # switch on/off + electric power
TARGET_P99_MS = 20.0
FLOOR = "HTTP floor"  # GET /api/v1/health through the same hub and driver (see _drive)


# --------------------------------------------------------------------------------------------- devices


async def _devices(host: str, port: int, creds: list[tuple[str, str]], spec_doc: dict[str, Any], concurrency: int,
                   stop: MpEvent, out: Queue[Any]) -> None:
    logging.getLogger("gmqtt").setLevel(logging.CRITICAL)
    spec = parse_spec(spec_doc)
    devices = [SimulatedDevice(did=did, secret=secret, spec=spec, host=host, port=port, seed=i, keepalive=60)
               for i, (did, secret) in enumerate(creds)]
    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def connect(dev: SimulatedDevice) -> None:
        nonlocal failed
        async with gate:
            try:
                await dev.connect()
            except Exception:
                failed += 1

    t = time.perf_counter()
    await asyncio.gather(*(connect(d) for d in devices))
    out.put(("ready", len(devices) - failed, failed, time.perf_counter() - t))
    await asyncio.get_running_loop().run_in_executor(None, stop.wait, 600)
    out.put(("answered", sum(len(d.received) for d in devices)))


def devices_main(host: str, port: int, creds: list[tuple[str, str]], spec_doc: dict[str, Any], concurrency: int,
                 stop: MpEvent, out: Queue[Any]) -> None:
    """Entry point of the device process (exits without clean-up; the kernel closes the sockets)."""
    raise_fd_limit()
    try:
        asyncio.run(_devices(host, port, creds, spec_doc, concurrency, stop, out))
    except BaseException as err:
        out.put(("error", repr(err)))
    finally:
        out.close()
        out.join_thread()
        os._exit(0)


# ---------------------------------------------------------------------------------------------- driver


@dataclass(frozen=True, slots=True)
class DriverJob:
    """What the driver measures and where."""

    http_url: str
    token: str
    mqtt_host: str
    mqtt_port: int
    mqtt_version: int
    service_password: str
    dids: list[str]
    requests: int
    concurrency: int
    warmup: int
    seed: int
    repeats: int
    raw_qos: int
    http_client: str


class RawRequester:
    """The reference: a plain MQTT client publishing requests on `down` and matching replies on `up` by id."""

    def __init__(self, job: DriverJob) -> None:
        self.job = job
        kwargs: dict[str, Any] = {"receive_maximum": 1000} if job.mqtt_version == 5 else {}
        self.client = Client(f"bench-raw-{os.getpid()}", clean_session=True, **kwargs)
        self.client.set_auth_credentials(SERVICE_USER, job.service_password)
        self.client.on_message = self._on_message
        self.waiting: dict[tuple[str, int], asyncio.Future[None]] = {}
        self.next_id = 2_000_000_000_000
        self.subscribed = asyncio.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()

    def _on_message(self, _c: Any, topic: str, payload: bytes, _qos: int, _p: Any) -> int:
        parts = topic.split("/")
        if len(parts) == 3 and parts[2] == "up":
            with contextlib.suppress(ValueError):
                msg = decode_up(payload)
                fut = self.waiting.pop((parts[1], msg.id), None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
        return 0

    async def start(self) -> None:
        version = MQTTv50 if self.job.mqtt_version == 5 else MQTTv311
        await self.client.connect(self.job.mqtt_host, self.job.mqtt_port, version=version, keepalive=60)
        self.client.subscribe(Topic.all_up(), qos=self.job.raw_qos)
        await asyncio.wait_for(self.subscribed.wait(), timeout=10)

    async def request(self, did: str) -> None:
        self.next_id += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[(did, self.next_id)] = fut
        self.client.publish(Topic.down(did), encode(DownMessage(self.next_id, "get_properties", GET)), qos=1)
        await asyncio.wait_for(fut, timeout=10)


async def measure(name: str, call: Callable[[str], Awaitable[None]], dids: list[str], n: int, concurrency: int,
                  rnd: random.Random) -> dict[str, Any]:
    """n calls on random devices with `concurrency` requesters; latencies in ms."""
    lat: list[float] = []
    errors: dict[str, int] = {}
    left = n

    async def requester() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            did = rnd.choice(dids)
            t = time.perf_counter()
            try:
                await call(did)
                lat.append((time.perf_counter() - t) * 1000)
            except Exception as err:
                key = f"{type(err).__name__}: {str(err)[:80]}"
                errors[key] = errors.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(requester() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"name": name, "concurrency": concurrency, "ok": len(lat), "errors": errors, "wall_s": wall,
            **percentiles(lat)}


def percentiles(lat: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of a list of milliseconds (nearest rank)."""
    if not lat:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan"),
                "mean": float("nan")}
    s = sorted(lat)

    def p(q: float) -> float:
        return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]

    return {"p50": p(0.50), "p90": p(0.90), "p99": p(0.99), "max": s[-1], "mean": sum(s) / len(s)}


Post = Callable[[str, Any], Awaitable[tuple[int, Any]]]
Get = Callable[[str], Awaitable[int]]


async def http_client(job: DriverJob, stack: contextlib.AsyncExitStack) -> tuple[Post, Get]:
    """The driver's HTTP client (`--http-client`): httpx (what the tests and the SDK's users use) or aiohttp (a
    cheaper client per request: the driver shares the 2 cores with the hub, so its own cost is in every figure)."""
    headers = {"Authorization": f"Bearer {job.token}"}
    if job.http_client == "aiohttp":
        import aiohttp

        session = await stack.enter_async_context(aiohttp.ClientSession(
            base_url=job.http_url, headers=headers, timeout=aiohttp.ClientTimeout(total=15),
            connector=aiohttp.TCPConnector(limit=job.concurrency + 2)))

        async def a_post(path: str, body: Any) -> tuple[int, Any]:
            async with session.post(path, json=body) as r:
                return r.status, await r.json()

        async def a_get(path: str) -> int:
            async with session.get(path) as r:
                await r.read()
                return r.status

        return a_post, a_get
    limits = httpx.Limits(max_connections=job.concurrency + 2, max_keepalive_connections=job.concurrency + 2)
    api = await stack.enter_async_context(httpx.AsyncClient(base_url=job.http_url, headers=headers, timeout=15,
                                                            limits=limits))

    async def h_post(path: str, body: Any) -> tuple[int, Any]:
        r = await api.post(path, json=body)
        return r.status_code, r.json() if r.status_code == 200 else r.text

    async def h_get(path: str) -> int:
        return (await api.get(path)).status_code

    return h_post, h_get


async def _drive(job: DriverJob, phase: MpEvent, out: Queue[Any]) -> None:
    rnd = random.Random(job.seed)
    raw = RawRequester(job)
    await raw.start()
    print("  driver: raw MQTT requester subscribed", flush=True)
    async with contextlib.AsyncExitStack() as stack:
        post, get = await http_client(job, stack)

        async def api_call(did: str) -> None:
            status, body = await post(f"/api/v1/devices/{did}/commands", {"method": "get_properties", "params": GET})
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {str(body)[:60]}")
            if body.get("status") != "replied":
                raise RuntimeError(f"status {body.get('status')}")

        async def floor_call(_did: str) -> None:
            # the hub's cheapest endpoint (no token, no database, no device): the same server, middleware, router
            # and driver as a command, so its latency is the floor any API call has on this machine in this run
            status = await get("/api/v1/health")
            if status != 200:
                raise RuntimeError(f"HTTP {status}")

        # warm-up (HTTP keep-alive connections, hub subscriptions, SQLite pages), not measured
        w = await measure("warm-up", api_call, job.dids, job.warmup, job.concurrency, rnd)
        print(f"  driver: API warm-up {w['ok']} ok, errors {w['errors']}", flush=True)
        w = await measure("warm-up", raw.request, job.dids, job.warmup, 1, rnd)
        print(f"  driver: raw warm-up {w['ok']} ok, errors {w['errors']}", flush=True)
        results: list[dict[str, Any]] = []

        async def measured(name: str, call: Callable[[str], Awaitable[None]], conc: int, rep: int) -> None:
            out.put(("cpu", "begin", len(results)))  # the hub samples the processes' CPU around each phase
            await asyncio.sleep(0.2)  # let it read the mark before the load starts
            r = await measure(name, call, job.dids, job.requests, conc, rnd)
            out.put(("cpu", "end", len(results)))
            results.append({"repeat": rep + 1, **r})
            await asyncio.sleep(0.2)

        for rep in range(job.repeats):
            for conc in (1, job.concurrency):
                await measured("raw MQTT", raw.request, conc, rep)
                await measured(FLOOR, floor_call, conc, rep)
                if conc == 1 and rep == 0:
                    out.put(("phase", "api-sequential"))  # the hub profiles this phase when asked
                await measured("API", api_call, conc, rep)
                if conc == 1 and rep == 0:
                    out.put(("phase", "api-sequential-done"))
    out.put(("results", results))
    with contextlib.suppress(Exception):
        await asyncio.wait_for(raw.client.disconnect(), timeout=2)


def driver_main(job: DriverJob, phase: MpEvent, out: Queue[Any]) -> None:
    """Entry point of the driver process."""
    try:
        asyncio.run(_drive(job, phase, out))
    except BaseException as err:
        out.put(("error", repr(err)))
    finally:
        out.close()
        out.join_thread()
        os._exit(0)


# -------------------------------------------------------------------------------------------- one run


def _nats_pids() -> list[int]:
    """The nats-server this hub supervises (its child)."""
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True) if p.name() == "nats-server"]


def time_command_service(services: Services) -> tuple[list[float], list[float]]:
    """Wrap the hub's CommandService to collect (ms) the wall time of ``send`` (validate, insert the command row,
    publish on NATS ``ecohub.{did}.down``, await the reply, update the row): the rest of an API call is HTTP +
    FastAPI + httpx."""
    commands = services.commands
    assert commands is not None
    send = commands.send
    samples: list[float] = []

    async def timed(*a: Any, **kw: Any) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            return await send(*a, **kw)
        finally:
            samples.append((time.perf_counter() - t) * 1000)

    commands.send = timed  # type: ignore[method-assign]
    return samples, []


async def _get(out: Queue[Any], within: float) -> Any:
    msg = await asyncio.get_running_loop().run_in_executor(None, out.get, True, within)
    if msg[0] == "error":
        raise RuntimeError(msg[1])
    return msg


async def run_variant(broker: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:  # broker: "embedded"
    """One hub + devices + driver; returns the driver's results."""
    spec = json.loads(SPEC_FILE.read_text())
    settings = Settings(data_dir=tmp / broker / "data", cells=[CELL], default_cell=CELL)
    services: Services = bootstrap(settings)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    phase = ctx.Event()
    dev_out: Queue[Any] = ctx.Queue()
    drv_out: Queue[Any] = ctx.Queue()
    procs: list[Any] = []
    try:
        services.products.import_spec(spec, model=MODEL, actor="bench", **DEFINITION)
        creds = [(d.did, d.secret) for d in services.devices.provision(model=MODEL, count=args.devices)]
        token = str(services.tokens.create(role="operator", label="bench")["token"])
        http_port, mqtt_port = free_port(), free_port()
        async with running_hub(services, app_factory=create_app,
                               http_port=http_port, mqtt_port=mqtt_port, broker=broker) as hub:
            endpoint_version = 4  # NATS speaks MQTT 3.1.1
            dev = ctx.Process(target=devices_main, name="bench-devices", daemon=True,
                              args=(HOST, mqtt_port, creds, spec, 50, stop, dev_out))
            dev.start()
            procs.append(dev)
            ready = await _get(dev_out, 300)
            print(f"  [{broker}] {ready[1]} devices connected in {ready[3]:.1f} s ({ready[2]} failed)", flush=True)
            job = DriverJob(str(hub.runtime.http_url), token, HOST, mqtt_port, endpoint_version,
                            services.service_password, [c[0] for c in creds], args.requests, args.concurrency,
                            args.warmup, args.seed, args.repeats, args.raw_qos, args.http_client)
            drv = ctx.Process(target=driver_main, name="bench-driver", daemon=True, args=(job, phase, drv_out))
            drv.start()
            procs.append(drv)
            inner, inner_mqtt = time_command_service(services)
            prof = cProfile.Profile() if args.profile else None
            deadline = time.monotonic() + args.timeout
            results: list[dict[str, Any]] = []
            inner_seq: dict[str, float] = {}
            meter = CpuMeter({"hub": [os.getpid()], "nats-server": _nats_pids(), "devices": [dev.pid],
                              "driver": [drv.pid]})
            cpu: dict[int, dict[str, float]] = {}
            while not results:
                msg = await _get(drv_out, max(1.0, deadline - time.monotonic()))
                if msg[0] == "cpu":
                    if msg[1] == "begin":
                        meter.start()
                    else:
                        cpu[msg[2]] = meter.stop()
                elif msg[0] == "phase":
                    if msg[1] == "api-sequential-done":
                        inner_seq = percentiles(list(inner))
                    inner.clear()
                    inner_mqtt.clear()
                    if prof is not None:
                        (prof.enable if msg[1] == "api-sequential" else prof.disable)()
                elif msg[0] == "results":
                    results = msg[1]
                    for i, r in enumerate(results):
                        r["cpu"] = cpu.get(i, {})
            stop.set()
            answered = (await _get(dev_out, 10))[1]
            profile_text = ""
            if prof is not None:
                buf = io.StringIO()
                st = pstats.Stats(prof, stream=buf).strip_dirs()
                st.sort_stats("tottime").print_stats(args.profile_lines)
                st.sort_stats("cumulative").print_stats(args.profile_lines)
                profile_text = buf.getvalue()
        return {"broker": broker, "results": results, "answered": answered, "profile": profile_text,
                "inner_seq": inner_seq}
    finally:
        stop.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
        services.close()


def print_table(variants: list[dict[str, Any]]) -> bool:
    """The latency table and ratios; True when every API p99 meets the target."""
    print()
    print("| broker | repeat | mode | concurrency | ok | errors | p50 ms | p90 ms | p99 ms | max ms | req/s | "
          "CPU ms per request: hub / nats-server / devices / driver |")
    print("|--------|--------|------|-------------|----|--------|--------|--------|--------|--------|-------|---|")
    met = True
    for v in variants:
        for r in v["results"]:
            errs = sum(r["errors"].values())
            cpu = " / ".join(f"{1000 * r['cpu'].get(k, float('nan')) / max(1, r['ok']):.2f}"
                             for k in ("hub", "nats-server", "devices", "driver"))
            print(f"| {v['broker']} | {r['repeat']} | {r['name']} | {r['concurrency']} | {r['ok']} | {errs} | "
                  f"{r['p50']:.2f} | "
                  f"{r['p90']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | {r['ok'] / r['wall_s']:.0f} | {cpu} |")
            if r["name"] == "API":
                met &= r["p99"] < TARGET_P99_MS and errs == 0
    print()
    for v in variants:
        for name in ("raw MQTT", FLOOR, "API"):
            for conc in sorted({r["concurrency"] for r in v["results"]}):
                rs = [r for r in v["results"] if r["name"] == name and r["concurrency"] == conc]
                hub = [1000 * r["cpu"]["hub"] / max(1, r["ok"]) for r in rs if "hub" in r["cpu"]]
                print(f"  {v['broker']} {name} concurrency {conc}: p50 {mmm([r['p50'] for r in rs], '{:.2f}')} ms, "
                      f"p99 {mmm([r['p99'] for r in rs], '{:.2f}')} ms, req/s "
                      f"{mmm([r['ok'] / r['wall_s'] for r in rs])}, hub CPU {mmm(hub, '{:.2f}')} ms per request "
                      f"(min / median / max over {len(rs)} repeats)")
        by = {(r["name"], r["concurrency"]): r for r in v["results"] if r["repeat"] == 1}
        for (name, conc), r in by.items():
            if name != "API":
                continue
            ref = by.get(("raw MQTT", conc))
            if ref:
                print(f"  {v['broker']}, concurrency {conc}: API / raw MQTT = {r['p50'] / ref['p50']:.1f}x at p50, "
                      f"{r['p99'] / ref['p99']:.1f}x at p99 (API p99 {r['p99']:.1f} ms, "
                      f"target < {TARGET_P99_MS:.0f} ms)")
            floor = by.get((FLOOR, conc))
            if floor:
                print(f"  {v['broker']}, concurrency {conc}: the HTTP floor alone (GET /api/v1/health, same hub and "
                      f"driver) p50 {floor['p50']:.1f} ms, p99 {floor['p99']:.1f} ms; API p99 ÷ floor p99 = "
                      f"{r['p99'] / floor['p99']:.1f}")
            if r["errors"]:
                print(f"    API errors: {json.dumps(r['errors'])}")
        q = v["inner_seq"]
        if q:
            print(f"  {v['broker']}, sequential API (repeat 1): of which inside CommandService.send (validate, insert "
                  f"the command, publish on NATS, await the reply, update): p50 {q['p50']:.2f} ms, p99 {q['p99']:.2f} "
                  f"ms; the rest is HTTP + FastAPI (auth, dependencies) + httpx")
        print(f"  {v['broker']}: the devices answered {v['answered']} requests in total")
    return met


async def bench(args: argparse.Namespace) -> int:
    raise_fd_limit()
    brokers = ["embedded"]
    print(f"ecohub command round-trip benchmark: {args.devices} connected devices, {args.requests} requests per "
          f"mode, sequential and {args.concurrency} concurrent, get_properties of 2 properties")
    print("machine:\n  " + machine(), flush=True)
    variants = []
    with tempfile.TemporaryDirectory(prefix="ecohub-cmd-") as tmp:
        for broker in brokers:
            variants.append(await run_variant(broker, args, Path(tmp)))
    met = print_table(variants)
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share the cores)")
    for v in variants:
        if v["profile"]:
            print(f"\n=== cProfile of the hub process ({v['broker']}) during the sequential API phase ===")
            print(v["profile"])
    if not met and not args.profile:
        print("API p99 target missed: rerun with --profile to see where the hub's time goes")
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=1000, help="connected devices (default 1000)")
    parser.add_argument("--requests", type=int, default=500, help="requests per mode (default 500)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent requesters (default 8)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests first (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="measure every mode this many times (default 3)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed for the driver per variant")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--raw-qos", type=int, choices=[0, 1], default=0,
                        help="QoS of the raw reference's ecohub/+/up subscription (default 0: at 1000 devices a QoS 1 "
                             "wildcard subscription through NATS's MQTT layer stalled, see bench/RESULTS.md)")
    parser.add_argument("--http-client", choices=["httpx", "aiohttp"], default="httpx",
                        help="the driver's HTTP client (default httpx)")
    parser.add_argument("--profile", action="store_true", help="cProfile the hub during the sequential API phase")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args(argv)
    if args.devices < 1 or args.requests < 1 or args.concurrency < 1:
        parser.error("--devices, --requests and --concurrency must be >= 1")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
