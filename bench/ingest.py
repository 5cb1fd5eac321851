"""Ingest benchmark: messages/s persisted by ecohub's IngestWorker, next to the broker's own pass-through rate.

For each broker (ecohub's embedded amqtt broker, and Mosquitto) the same load is run twice, each time on a
fresh broker started on a free port:

* reference: D provisioned devices (real MQTT clients built with the device SDK, in a separate process)
  publish N QoS 1 ``properties_changed`` messages; one plain QoS 1 subscriber on ``ecohub/+/up`` counts the
  arrivals. messages/s = N / (time from "go" until the N-th arrival).
* ecohub: the same load, consumed by ecohub's IngestWorker (spec validation, twin upsert + telemetry append,
  batched into a real SQLite file, PUBACK after commit). messages/s = N / (time until ``stats.stored`` has
  grown by N); the rows are then counted in the database to check nothing was lost or duplicated.

With ``--bound`` one user (country DE, so cell eu) signs up, creates a home and claims every bench device
into it through the home services before the timed runs, so the worker AES-GCM-seals every telemetry value and
twin report with that user's key (privacy.sealing); afterwards the telemetry rows with ``sealed IS NOT NULL``
are counted to check that the figure really includes the sealing.

The consumer (and, for the embedded broker, the broker) run in this process, as in ``ecohub up``; the
publishers run in their own process so they do not share this process's event loop and GIL.

Usage::

    python bench/ingest.py [--messages N] [--devices D] [--broker embedded|mosquitto|both] [--bound] [--profile]
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
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.storage import PersistentStorage
from sqlalchemy import func, select

from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.authority import BrokerAuthority
from ecohub.connect.broker import EmbeddedBroker
from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.ingest import IngestWorker
from ecohub.connect.models import InboxEntry
from ecohub.connect.mqtt import Endpoint
from ecohub.connect.service import ProvisionedDevice
from ecohub.hub import free_port
from ecohub.protocol import Topic
from ecohub.sdk.device import Device
from ecohub.settings import IngestSettings, Settings
from ecohub.telemetry.models import Sample

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "tests" / "fixtures" / "specs" / "cuco.plug.v3.json"
MODEL = "cuco.plug.v3"
CELL = "eu"
HOST = "127.0.0.1"
BOUND_COUNTRY = "DE"  # a user of this country is pinned to CELL
BOUND_PASSWORD = "correct horse battery"


# --------------------------------------------------------------------------------------------- helpers


async def wait_port(host: str, port: int, within: float = 10.0) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + within
    while True:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {within:.0f} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return


async def wait_until(cond: Callable[[], bool], within: float, step: float = 0.005) -> bool:
    """Poll `cond` every `step` seconds; False when `within` seconds passed first."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


# ------------------------------------------------------------------------------------ publisher process


class WindowStorage(PersistentStorage):
    """gmqtt's in-flight store, with a wake-up whenever a PUBACK frees room (the publisher's QoS 1 window)."""

    def __init__(self) -> None:
        super().__init__()
        self.room = asyncio.Event()

    def __len__(self) -> int:
        return len(self._messages)

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        self.room.set()


class BenchDevice(Device):
    """The SDK device with a bounded number of unacknowledged publishes."""

    storage: WindowStorage

    def _make_client(self) -> Client:
        client = super()._make_client()
        self.storage = WindowStorage()
        client._persistent_storage = self.storage
        return client


@dataclass(frozen=True, slots=True)
class PublisherJob:
    """What one publisher process is told: where to connect, as whom, how much to send."""

    host: str
    port: int
    devices: list[tuple[str, str]]  # (did, secret)
    counts: list[int]  # messages per device
    window: int  # unacknowledged QoS 1 publishes per device
    spec: dict[str, Any]


async def _publish_all(job: PublisherJob, go: MpEvent, stop: MpEvent, out: Queue[Any]) -> None:
    devices = [BenchDevice(did=did, secret=secret, spec=job.spec, host=job.host, port=job.port, keepalive=60)
               for did, secret in job.devices]
    sem = asyncio.Semaphore(32)

    async def connect(dev: BenchDevice) -> None:
        async with sem:
            await dev.connect()

    await asyncio.gather(*(connect(d) for d in devices))
    out.put(("ready", len(devices)))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, go.wait)
    t0 = time.perf_counter()

    async def run(dev: BenchDevice, count: int) -> None:
        storage = dev.storage
        for i in range(count):
            while len(storage) >= job.window:
                storage.room.clear()
                await storage.room.wait()
            # a real properties_changed notification: switch status + electric power, spec-checked by the SDK
            dev.report({(2, 1): i % 2 == 0, (11, 2): float(i % 1000)}, validate=False)
            if i % 64 == 63:
                await asyncio.sleep(0)  # let the socket drain and PUBACKs in
        while len(storage):
            storage.room.clear()
            await storage.room.wait()

    await asyncio.gather(*(run(d, n) for d, n in zip(devices, job.counts, strict=True)))
    out.put(("done", sum(job.counts), time.perf_counter() - t0))
    await loop.run_in_executor(None, stop.wait, 120)
    await asyncio.gather(*(d.disconnect() for d in devices), return_exceptions=True)


def publisher_main(job: PublisherJob, go: MpEvent, stop: MpEvent, out: Queue[Any]) -> None:
    """Entry point of a publisher process."""
    try:
        asyncio.run(_publish_all(job, go, stop, out))
    except BaseException as err:  # report, so the parent does not wait for nothing
        out.put(("error", repr(err)))
        raise


class Publishers:
    """P publisher processes sharing the provisioned devices; started, told to go, stopped."""

    def __init__(self, *, host: str, port: int, creds: list[tuple[str, str]], messages: int, processes: int,
                 window: int, spec: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.go = ctx.Event()
        self.stop = ctx.Event()
        self.out: Queue[Any] = ctx.Queue()
        per_device = [messages // len(creds) + (1 if i < messages % len(creds) else 0) for i in range(len(creds))]
        self.procs = []
        for k in range(processes):
            job = PublisherJob(host, port, creds[k::processes], per_device[k::processes], window, spec)
            self.procs.append(ctx.Process(target=publisher_main, args=(job, self.go, self.stop, self.out),
                                          name=f"bench-publisher-{k}", daemon=True))
        self.send_s: list[float] = []

    async def _get(self, kind: str, within: float) -> list[Any]:
        loop = asyncio.get_running_loop()
        got: list[Any] = []
        while len(got) < len(self.procs):
            msg = await loop.run_in_executor(None, self.out.get, True, within)
            if msg[0] == "error":
                raise RuntimeError(f"a publisher failed: {msg[1]}")
            if msg[0] != kind:
                raise RuntimeError(f"expected {kind!r} from a publisher, got {msg!r}")
            got.append(msg)
        return got

    async def start(self) -> None:
        """Spawn the processes and wait until every device is connected."""
        for p in self.procs:
            p.start()
        await self._get("ready", within=60)

    async def finished(self, within: float) -> float:
        """Seconds the slowest publisher took from go until all its PUBACKs."""
        with contextlib.suppress(Exception):
            self.send_s = [m[2] for m in await self._get("done", within=within)]
        return max(self.send_s) if self.send_s else float("nan")

    async def close(self) -> None:
        """Let the processes disconnect and exit (the broker may share this loop); terminate any that hang."""
        self.stop.set()
        self.go.set()
        loop = asyncio.get_running_loop()
        for p in self.procs:
            if p.pid is None:
                continue
            await loop.run_in_executor(None, p.join, 10)
            if p.is_alive():
                p.terminate()
                await loop.run_in_executor(None, p.join, 5)


# ------------------------------------------------------------------------------------------- brokers


class CountingLogHandler(logging.Handler):
    """Counts (and swallows) amqtt's log records by their first words, so thousands of lines become a figure."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = " ".join(record.getMessage().split()[:4])
        self.counts[key] = self.counts.get(key, 0) + 1


def quiet_amqtt() -> CountingLogHandler:
    """Route amqtt's warnings to a counter instead of stderr."""
    handler = CountingLogHandler()
    amqtt_log = logging.getLogger("amqtt")
    amqtt_log.handlers[:] = [handler]
    amqtt_log.propagate = False
    return handler


@dataclass
class BrokerHandle:
    """A running broker: where it listens and which MQTT level ecohub's own clients speak to it."""

    kind: str
    host: str
    port: int
    mqtt_version: int


broker_log = quiet_amqtt()


@contextlib.asynccontextmanager
async def embedded_broker(services: Services) -> AsyncIterator[BrokerHandle]:
    """ecohub's EmbeddedBroker (amqtt) with the BrokerAuthority, in this process, on a free port."""
    port = free_port()
    authority = BrokerAuthority(services.devices, service_password=services.service_password)
    async with EmbeddedBroker(host=HOST, port=port, authority=authority) as broker:
        broker_log.counts.clear()
        yield BrokerHandle("embedded (amqtt)", HOST, port, broker.mqtt_version)


@contextlib.asynccontextmanager
async def mosquitto_broker(workdir: Path, external: str | None) -> AsyncIterator[BrokerHandle]:
    """Our own `mosquitto -c` on a free port (or an external one given as host:port)."""
    if external:
        host, _, port_s = external.partition(":")
        yield BrokerHandle(f"mosquitto {external}", host or HOST, int(port_s or 1883), 5)
        return
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    conf.write_text(
        f"listener {port} {HOST}\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 0\n"  # the default (1000) drops QoS 1 messages queued for a slow subscriber
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )
    log_file = (workdir / f"mosquitto-{port}.log").open("w")
    proc = await asyncio.create_subprocess_exec(binary, "-c", str(conf), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        await wait_port(HOST, port)
        yield BrokerHandle("mosquitto", HOST, port, 5)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log_file.close()


def mosquitto_version() -> str:
    """`mosquitto -h` prints its version on the first line."""
    binary = shutil.which("mosquitto")
    if binary is None:
        return "mosquitto not found"
    res = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5, check=False)
    return (res.stdout or res.stderr).splitlines()[0].strip()


# ---------------------------------------------------------------------------------------- consumers


class CountingSubscriber:
    """The pass-through reference: one QoS 1 subscriber on ecohub/+/up that only counts."""

    def __init__(self, broker: BrokerHandle, password: str, receive_maximum: int) -> None:
        kwargs: dict[str, Any] = {"receive_maximum": receive_maximum} if broker.mqtt_version == 5 else {}
        self.client = Client(f"bench-ref-{os.getpid()}", clean_session=True, **kwargs)
        self.client.set_auth_credentials(SERVICE_USER, password)
        self.client.on_message = self._on_message
        self.broker = broker
        self.up = 0
        self.states = 0

    def _on_message(self, _client: Any, topic: str, _payload: bytes, _qos: int, _props: Any) -> int:
        if topic.endswith("/up"):
            self.up += 1
        else:
            self.states += 1
        return 0

    async def __aenter__(self) -> CountingSubscriber:
        version = MQTTv50 if self.broker.mqtt_version == 5 else MQTTv311
        await self.client.connect(self.broker.host, self.broker.port, version=version, keepalive=60)
        self.client.subscribe(Topic.all_up(), qos=1)
        self.client.subscribe(Topic.all_state(), qos=1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), timeout=3)


@dataclass
class Timings:
    """Wall time the worker spends in each step (measured by wrapping the bound methods)."""

    process_s: float = 0.0  # decode + authorise + validate (event loop)
    write_s: float = 0.0  # the transaction (worker thread)
    flush_s: float = 0.0  # a whole flush: process + write + acks + bus publish (event loop, awaiting the write)


def instrument(worker: IngestWorker, timings: Timings, thread_profile: cProfile.Profile | None) -> None:
    """Time the worker's steps; optionally profile its write thread."""
    process, write, flush = worker.pipeline.process, worker._write, worker._flush

    def timed_process(topic: str, payload: bytes, received: int) -> Any:
        t = time.perf_counter()
        try:
            return process(topic, payload, received)
        finally:
            timings.process_s += time.perf_counter() - t

    def timed_write(cell: str, items: list[Any], received: int) -> list[Any]:
        t = time.perf_counter()
        if thread_profile is not None:
            thread_profile.enable()
        try:
            return write(cell, items, received)
        finally:
            if thread_profile is not None:
                thread_profile.disable()
            timings.write_s += time.perf_counter() - t

    async def timed_flush() -> None:
        t = time.perf_counter()
        try:
            await flush()
        finally:
            timings.flush_s += time.perf_counter() - t

    worker.pipeline.process = timed_process  # type: ignore[method-assign]
    worker._write = timed_write  # type: ignore[method-assign]
    worker._flush = timed_flush  # type: ignore[method-assign]


# -------------------------------------------------------------------------------------------- a run


@dataclass
class RunResult:
    """One measured run."""

    broker: str
    consumer: str
    messages: int
    done: int
    seconds: float
    send_s: float
    timed_out: bool
    stats: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    timings: Timings | None = None
    broker_log: dict[str, int] = field(default_factory=dict)
    peak_unstored: int = 0
    peak_waiting: int = 0
    profile: str = ""

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Env:
    """A data dir with the product imported and the devices provisioned."""

    services: Services
    creds: list[tuple[str, str]]
    spec: dict[str, Any]
    workdir: Path
    owner: str | None = None  # the user whose home every device is bound to (--bound), else None


def bind_all(services: Services, provisioned: list[ProvisionedDevice], email: str) -> str:
    """Sign up one user, create a home and claim every device into it (printed bind codes); the user id."""
    accounts, homes, bindings = services.home.accounts, services.home.homes, services.home.bindings
    user = accounts.signup(email=email, password=BOUND_PASSWORD, country=BOUND_COUNTRY)
    if user["cell"] != CELL:
        raise RuntimeError(f"a {BOUND_COUNTRY} user landed in cell {user['cell']!r}, the devices are in {CELL!r}")
    principal = Principal(Role.USER, user["user_id"], cell=user["cell"])
    home_id = homes.create(principal, "bench home")["home_id"]
    for d in provisioned:
        if d.cell != principal.cell:
            raise RuntimeError(f"device {d.did} is in cell {d.cell!r}, the user in {principal.cell!r}")
        bindings.claim(principal, home_id, did=d.did, code=d.bind_code)
    return user["user_id"]


def make_env(workdir: Path, devices: int, ingest: IngestSettings, *, bound: bool = False) -> Env:
    """bootstrap() on a fresh SQLite data dir; import the real cuco.plug.v3 spec; provision the devices
    (in CELL); with `bound`, bind them all to one user's home so their data is sealed."""
    settings = Settings(data_dir=workdir / "data", cells=[CELL], default_cell=CELL, ingest=ingest)
    services = bootstrap(settings)
    spec = json.loads(SPEC_FILE.read_text())
    services.products.import_spec(spec, model=MODEL, actor="bench")
    provisioned = services.devices.provision(model=MODEL, count=devices, cell=CELL)
    creds = [(d.did, d.secret) for d in provisioned]
    owner = bind_all(services, provisioned, f"bench-{workdir.name}@example.com") if bound else None
    return Env(services, creds, spec, workdir, owner)


async def run_once(env: Env, broker_cm: contextlib.AbstractAsyncContextManager[BrokerHandle], *, ingest: bool,
                   args: argparse.Namespace) -> RunResult:
    """Start the broker, the consumer and the publishers; time N messages from go to the last one counted."""
    services = env.services
    ingest_cfg = services.settings.ingest
    async with broker_cm as broker:
        profile = cProfile.Profile() if args.profile and ingest else None
        thread_profile = cProfile.Profile() if args.profile and ingest else None
        async with contextlib.AsyncExitStack() as stack:
            timings: Timings | None = None
            peak = [0, 0]  # messages received but not yet stored; tasks waiting for an in-flight slot
            worker: IngestWorker | None = None
            sub: CountingSubscriber | None = None
            if ingest:
                endpoint = Endpoint(broker.host, broker.port, broker.mqtt_version, services.service_password)
                mosq = broker.mqtt_version == 5
                # as hub.running_hub wires it: a shared subscription and a unique client id on an external broker
                worker = services.ingest_worker(
                    endpoint, batch_size=ingest_cfg.batch_size, batch_ms=ingest_cfg.batch_ms,
                    max_inflight=ingest_cfg.max_inflight,
                    client_id=f"ecohub-ingest-bench-{os.getpid()}" if mosq else "ecohub-ingest", share_group="ingest")
                timings = Timings()
                instrument(worker, timings, thread_profile)
                task = asyncio.create_task(worker.run(), name="ingest")

                async def cancel(t: asyncio.Task[None] = task) -> None:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t

                stack.push_async_callback(cancel)
                await asyncio.wait_for(worker.ready.wait(), timeout=15)
                w = worker

                def states_seen() -> int:
                    return w.stats.stored

                def count() -> int:
                    room = w._room._waiters
                    peak[0] = max(peak[0], w.stats.received - w.stats.stored)
                    peak[1] = max(peak[1], len(room) if room else 0)
                    return w.stats.stored
            else:
                sub = await stack.enter_async_context(
                    CountingSubscriber(broker, services.service_password, ingest_cfg.max_inflight))
                s = sub

                def states_seen() -> int:
                    return s.states

                def count() -> int:
                    return s.up

            pubs = Publishers(host=broker.host, port=broker.port, creds=env.creds, messages=args.messages,
                              processes=args.publishers, window=args.window, spec=env.spec)
            stack.push_async_callback(pubs.close)
            await pubs.start()
            # every device published its retained online state on connect: once all are in, the
            # subscription is live and the consumer is warm
            if not await wait_until(lambda: states_seen() >= len(env.creds), within=30):
                raise RuntimeError(f"only {states_seen()} of {len(env.creds)} online states reached the consumer")
            base = count()
            target = base + args.messages
            if profile is not None:
                profile.enable()
            t0 = time.perf_counter()
            pubs.go.set()
            ok = await wait_until(lambda: count() >= target, within=args.timeout, step=0.002)
            seconds = time.perf_counter() - t0
            if profile is not None:
                profile.disable()
            done = count() - base
            send_s = await pubs.finished(within=5 if ok else 1)
            result = RunResult(broker.kind, "ecohub ingest" if ingest else "reference subscriber", args.messages,
                               done, seconds, send_s, not ok, timings=timings)
            result.broker_log = dict(broker_log.counts) if broker.kind.startswith("embedded") else {}
            if worker is not None:
                result.stats = worker.stats.to_dict()
                result.peak_unstored, result.peak_waiting = peak
        if worker is not None:
            result.rows = count_rows(services)
        if profile is not None and thread_profile is not None:
            result.profile = render_profile(profile, "event loop thread (broker + MQTT client + pipeline)",
                                            args.profile_lines)
            result.profile += render_profile(thread_profile, "ingest write thread (SQLAlchemy + SQLite)",
                                             args.profile_lines)
    return result


def count_rows(services: Services) -> dict[str, int]:
    """Rows actually committed (a check of the counters), and how many telemetry rows are sealed."""
    with services.dbs.cell_session(CELL) as s:
        return {"inbox": s.scalar(select(func.count()).select_from(InboxEntry)) or 0,
                "telemetry": s.scalar(select(func.count()).select_from(Sample)) or 0,
                "telemetry_sealed": s.scalar(select(func.count()).select_from(Sample)
                                             .where(Sample.sealed.is_not(None))) or 0}


def render_profile(prof: cProfile.Profile, title: str, lines: int) -> str:
    """The top functions by own time and by cumulative time."""
    buf = io.StringIO()
    buf.write(f"\n=== profile: {title} ===\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- report


def print_run(r: RunResult) -> None:
    flag = "  TIMEOUT" if r.timed_out else ""
    print(f"  {r.broker:<18} {r.consumer:<21} {r.done:>6}/{r.messages} msgs in {r.seconds:6.2f} s = "
          f"{r.rate:8.0f} msg/s  (publishers got all PUBACKs after {r.send_s:.2f} s){flag}", flush=True)
    if r.broker_log:
        print(f"    amqtt warnings during the measured window: {json.dumps(r.broker_log)}")


def print_ingest_details(r: RunResult) -> None:
    st = r.stats
    batches = st.get("batches", 0)
    avg = st.get("received", 0) / batches if batches else 0.0
    print(f"    ingest stats: {json.dumps(st)}")
    print(f"    batches: {batches}, average batch size {avg:.1f}; rows committed: {json.dumps(r.rows)}; "
          f"peak received-not-stored {r.peak_unstored}, peak waiting for an in-flight slot {r.peak_waiting}")
    if r.timings is not None and r.seconds > 0:
        t = r.timings
        print(f"    worker time (of {r.seconds:.2f} s wall): pipeline.process {t.process_s:.2f} s "
              f"({100 * t.process_s / r.seconds:.0f}%), _write in thread {t.write_s:.2f} s "
              f"({100 * t.write_s / r.seconds:.0f}%), whole flushes {t.flush_s:.2f} s "
              f"({100 * t.flush_s / r.seconds:.0f}%)")


def machine_summary() -> str:
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = line.split(":", 1)[1].strip()
    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {mem} RAM, {mosquitto_version()}"


async def bench(args: argparse.Namespace) -> int:
    brokers = ["embedded", "mosquitto"] if args.broker == "both" else [args.broker]
    devices = (f"devices BOUND to one {BOUND_COUNTRY} user's home (cell {CELL}): every value AES-GCM-sealed"
               if args.bound else "unbound devices: values stored plain")
    print(f"ecohub ingest benchmark: {args.messages} messages from {args.devices} devices "
          f"({args.publishers} publisher process(es), window {args.window}/device), QoS 1, spec {MODEL}")
    print(f"devices: {devices}")
    print(f"machine: {machine_summary()}", flush=True)
    rows: list[tuple[RunResult, RunResult]] = []
    with tempfile.TemporaryDirectory(prefix="ecohub-bench-") as tmp:
        for kind in brokers:
            workdir = Path(tmp) / kind
            workdir.mkdir()
            env = make_env(workdir, args.devices, IngestSettings(batch_size=args.batch_size, batch_ms=args.batch_ms,
                                                                  max_inflight=args.max_inflight), bound=args.bound)
            if env.owner is not None:
                print(f"  {kind}: bound {len(env.creds)} devices to a home of user {env.owner}", flush=True)
            try:
                def broker_cm(e: Env = env, k: str = kind) -> contextlib.AbstractAsyncContextManager[BrokerHandle]:
                    return embedded_broker(e.services) if k == "embedded" else mosquitto_broker(e.workdir,
                                                                                                args.mosquitto)

                ref = await run_once(env, broker_cm(), ingest=False, args=args)
                print_run(ref)
                eco = await run_once(env, broker_cm(), ingest=True, args=args)
                print_run(eco)
                print_ingest_details(eco)
                rows.append((ref, eco))
            finally:
                env.services.close()
    print()
    mode = "bound (sealed)" if args.bound else "unbound (plain)"
    print(f"| {'broker':<18} | {'devices':<15} | {'reference msg/s':>15} | {'ecohub persisted msg/s':>22} "
          f"| {'ratio':>5} |")
    print(f"|{'-' * 20}|{'-' * 17}|{'-' * 17}|{'-' * 24}|{'-' * 7}|")
    low = False
    for ref, eco in rows:
        ratio = eco.rate / ref.rate if ref.rate else 0.0
        low |= ratio < 0.5
        print(f"| {ref.broker:<18} | {mode:<15} | {ref.rate:>15.0f} | {eco.rate:>22.0f} | {ratio:>5.2f} |")
    for _ref, eco in rows:
        if eco.profile:
            print(eco.profile)
    if low and not args.profile:
        print("\nratio below 0.5: rerun with --profile to see where the consumer's time goes "
              "(cProfile of the event loop thread and of the ingest write thread).")
    lost = [e for _r, e in rows if e.timed_out or e.rows.get("inbox", 0) < e.messages]
    for e in lost:
        print(f"WARNING: {e.broker}: {e.done}/{e.messages} counted, {e.rows.get('inbox')} inbox rows")
    # --bound must have measured sealing: every telemetry row sealed; without it none may be
    mismatch = [e for _r, e in rows
                if e.rows.get("telemetry_sealed", 0) != (e.rows.get("telemetry", 0) if args.bound else 0)]
    for _ref, eco in rows:
        total, sealed = eco.rows.get("telemetry", 0), eco.rows.get("telemetry_sealed", 0)
        print(f"{eco.broker}: {sealed}/{total} telemetry rows have sealed IS NOT NULL"
              f"{'  MISMATCH' if eco in mismatch else ''}")
    return 1 if lost or mismatch or any(r.timed_out for r, _e in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per run (default 20000)")
    parser.add_argument("--devices", type=int, default=20, help="provisioned devices publishing (default 20)")
    parser.add_argument("--broker", choices=["embedded", "mosquitto", "both"], default="both")
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes (default 1)")
    parser.add_argument("--window", type=int, default=50, help="unacknowledged publishes per device (default 50)")
    defaults = IngestSettings()
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="ingest batch size (settings)")
    parser.add_argument("--batch-ms", type=float, default=defaults.batch_ms, help="ingest batch time (settings)")
    parser.add_argument("--max-inflight", type=int, default=defaults.max_inflight,
                        help="ingest unacknowledged messages (settings; the MQTT 5 receive maximum)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per run (default 60)")
    parser.add_argument("--mosquitto", metavar="HOST:PORT", default=None,
                        help="use this running Mosquitto instead of starting one on a free port")
    parser.add_argument("--bound", action="store_true",
                        help="bind every device to one user's home first, so the worker seals all their data")
    parser.add_argument("--profile", action="store_true", help="cProfile the consumer side of the ecohub runs")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args(argv)
    if args.messages < 1 or args.devices < 1 or args.publishers < 1 or args.publishers > args.devices:
        parser.error("--messages and --devices must be >= 1, and 1 <= --publishers <= --devices")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
