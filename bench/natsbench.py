"""Shared pieces of the NATS-era benchmarks (not a benchmark itself; `python bench/natsbench.py --help` says so).

* `make_env`: bootstrap() on a fresh data dir, SQLite or throwaway PostgreSQL databases (127.0.0.1:5432, trust
  auth), the real `cuco.plug.v3` product, D provisioned devices;
* `plane`: the hub's device plane exactly as `ecohub up` composes it (`hub.enter_plane`: a supervised
  nats-server child on free ports, JetStream + MQTT, the auth callout answered by this process through
  `DeviceService.verify`, ingest's durable on `$MQTT_msgs`), without the API;
* `MosqLoad`: the device load — one `mosquitto_pub -q 1 -l` process per device (the C client of Debian's
  mosquitto-clients; client id = username = did, password = secret, so every connect goes through the callout),
  each message a real `properties_changed` of two properties (switch 2.1 and electric power 11.2);
* `mosquitto_sub_counter`: the pass-through reference, `mosquitto_sub -q 1 -C N` as the service user;
* stats helpers (min/median/max) and the machine line.

No fixed ports anywhere: every server here is on a port the OS handed out (a system nats-server holds 4222 and
Mosquitto 1883 on this machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from ecohub.connect.domain import SERVICE_USER

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "tests" / "fixtures" / "specs" / "cuco.plug.v3.json"
MODEL = "cuco.plug.v3"
# a complete product definition: what a product needs to reach certification (and a fleet)
DEFINITION = {"category": "plug", "target_markets": ["DE"], "target_price": "19.90", "forecast_volume": 1000}
CELL = "eu"
HOST = "127.0.0.1"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


# ------------------------------------------------------------------------------------------- databases


@contextlib.contextmanager
def pg_databases(prefix: str) -> Iterator[tuple[str, str]]:
    """Throwaway `{prefix}_{rand}_global` and `_{cell}` databases → (global url, cell url template); dropped after."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    names = [f"{name}_global", f"{name}_{CELL}"]
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'CREATE DATABASE "{n}"'))
        yield f"{PG}/{name}_global", f"{PG}/{name}_{{cell}}"
    finally:
        with admin.connect() as conn:
            for n in names:
                with contextlib.suppress(Exception):
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Env:
    """A data dir with the product imported and the devices provisioned."""

    services: Any  # ecohub.bootstrap.Services
    creds: list[tuple[str, str]]
    workdir: Path
    db: str


def settings_for(workdir: Path, db_urls: tuple[str, str] | None, **kw: Any) -> Any:
    from ecohub.settings import DatabaseSettings, Settings

    database = DatabaseSettings(url=db_urls[0], cell_url_template=db_urls[1]) if db_urls else DatabaseSettings()
    return Settings(data_dir=workdir / "data", cells=[CELL], default_cell=CELL, database=database, **kw)


def make_env(workdir: Path, devices: int, db_urls: tuple[str, str] | None = None, **kw: Any) -> Env:
    """bootstrap() on a fresh data dir (SQLite unless `db_urls`), the real product, `devices` provisioned in CELL."""
    from ecohub.bootstrap import bootstrap

    workdir.mkdir(parents=True, exist_ok=True)
    services = bootstrap(settings_for(workdir, db_urls, **kw))
    services.products.import_spec(json.loads(SPEC_FILE.read_text()), model=MODEL, actor="bench", **DEFINITION)
    creds: list[tuple[str, str]] = []
    while len(creds) < devices:
        batch = services.devices.provision(model=MODEL, count=min(10_000, devices - len(creds)), cell=CELL)
        creds += [(d.did, d.secret) for d in batch]
    return Env(services, creds, workdir, "postgresql" if db_urls else "sqlite")


def inbox_count(services: Any) -> int:
    """Messages persisted (one inbox row per stored device message)."""
    from ecohub.connect.models import InboxEntry

    with services.dbs.cell_session(CELL) as s:
        return int(s.scalar(select(func.count()).select_from(InboxEntry)) or 0)


def telemetry_count(services: Any) -> int:
    from ecohub.telemetry.models import Sample

    with services.dbs.cell_session(CELL) as s:
        return int(s.scalar(select(func.count()).select_from(Sample)) or 0)


# ---------------------------------------------------------------------------------------------- plane


@contextlib.asynccontextmanager
async def plane(services: Any) -> AsyncIterator[Any]:
    """The device plane as `ecohub up` starts it (embedded nats-server on free ports), no API, no worker."""
    from ecohub.hub import enter_plane

    async with AsyncExitStack() as stack:
        p = await enter_plane(stack, services, broker="embedded", host=HOST, mqtt_port=0)
        yield p


def lift_consumer_limit() -> None:
    """In this process only: render nats-server configs with `jetstream { limits { default_max_consumers: -1 } }`.

    nats-server 2.15 caps consumers per stream at a default (1000 here) when neither the stream nor the account sets
    one; the MQTT layer makes one consumer on `$MQTT_msgs` per QoS 1 subscription (every device's `down`), so the
    hub's config as generated holds at most ~999 devices subscribed at QoS 1. The fix belongs in
    `connect/nats/config.py`; the benchmarks can measure with it applied."""
    from ecohub.connect.nats import config

    if getattr(config.render, "_lifted", False):
        return
    original = config.render

    def render(**kw: Any) -> str:
        text = original(**kw)
        if "default_max_consumers" in text:  # the hub's own config lifts it already (since this was measured)
            return text
        return text.replace("jetstream {\n", "jetstream {\n  limits { default_max_consumers: -1 }\n", 1)

    render._lifted = True  # type: ignore[attr-defined]
    config.render = render  # type: ignore[assignment]


async def waiting_pulls(p: Any) -> int:
    """Pull requests waiting on ingest's durable (each idle worker holds one): a worker is bound and ready."""
    from ecohub.connect.nats.ingest import MQTT_MSGS
    from ecohub.connect.plane import INGEST_DURABLE

    info = await p.nc.jetstream().consumer_info(MQTT_MSGS, INGEST_DURABLE)
    return int(info.num_waiting or 0)


async def drained(p: Any) -> bool:
    """Nothing pending or unacknowledged on ingest's durable."""
    from ecohub.connect.nats.ingest import MQTT_MSGS
    from ecohub.connect.plane import INGEST_DURABLE

    info = await p.nc.jetstream().consumer_info(MQTT_MSGS, INGEST_DURABLE)
    return not info.num_pending and not info.num_ack_pending


async def wait_until(cond: Callable[[], Any], within: float, step: float = 0.01) -> bool:
    """Poll `cond` (sync, run in a thread when `thread`) until true; False after `within` s."""
    deadline = time.monotonic() + within
    while True:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)


# ----------------------------------------------------------------------------------------------- load


def message(i: int) -> bytes:
    """A properties_changed of switch status 2.1 and electric power 11.2 (what bench/ingest.py always sent)."""
    return json.dumps({"id": i, "method": "properties_changed",
                       "params": [{"siid": 2, "piid": 1, "value": i % 2 == 0},
                                  {"siid": 11, "piid": 2, "value": float(i % 1000)}]},
                      separators=(",", ":")).encode()


class MosqLoad:
    """One `mosquitto_pub -q 1 -l` process per device: real MQTT 3.1.1 clients with did/secret, QoS 1.

    `run()` starts them all and returns the seconds until the last one exited (each waits for its PUBACKs before
    it disconnects). Message ids continue across runs (`next_id`), so a second run is not a redelivery."""

    def __init__(self, host: str, port: int, creds: list[tuple[str, str]], workdir: Path, *, inflight: int = 100,
                 binary: str | None = None) -> None:
        self.host, self.port, self.creds, self.workdir = host, port, creds, workdir
        self.inflight = inflight
        self.binary = binary or shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
        self.next_id = 1

    def prepare(self, messages: int) -> list[Path]:
        per = [messages // len(self.creds) + (1 if i < messages % len(self.creds) else 0)
               for i in range(len(self.creds))]
        files = []
        base = self.next_id
        for (did, _secret), n in zip(self.creds, per, strict=True):
            f = self.workdir / f"load-{did}-{base}.txt"
            f.write_bytes(b"".join(message(base + k) + b"\n" for k in range(n)))
            files.append(f)
        self.next_id = base + max(per) + 1
        return files

    async def run(self, files: list[Path]) -> float:
        t0 = time.perf_counter()
        procs = []
        for (did, secret), f in zip(self.creds, files, strict=True):
            with f.open("rb") as stdin:
                procs.append(await asyncio.create_subprocess_exec(
                    self.binary, "-h", self.host, "-p", str(self.port), "-i", did, "-u", did, "-P", secret,
                    "-t", f"ecohub/{did}/up", "-q", "1", "-M", str(self.inflight), "-l", "-k", "60",
                    stdin=stdin, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE))
        errs = []
        for p in procs:
            _out, err = await p.communicate()
            if p.returncode:
                errs.append(err.decode(errors="replace").strip()[:200])
        if errs:
            raise RuntimeError(f"{len(errs)} mosquitto_pub failed: {errs[0]}")
        return time.perf_counter() - t0


@contextlib.asynccontextmanager
async def mosquitto_sub_counter(host: str, port: int, password: str, count: int,
                                topic: str = "ecohub/+/up") -> AsyncIterator[asyncio.subprocess.Process]:
    """`mosquitto_sub -q 1 -C count` as the service user; the process exits after `count` messages."""
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    proc = await asyncio.create_subprocess_exec(
        binary, "-h", host, "-p", str(port), "-i", f"bench-ref-{os.getpid()}-{secrets.token_hex(2)}",
        "-u", SERVICE_USER, "-P", password, "-t", topic, "-q", "1", "-C", str(count), "-k", "60",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(0.7)  # CONNECT + SUBSCRIBE (a durable per QoS 1 subscription) before the load starts
        if proc.returncode is not None:
            raise RuntimeError(f"mosquitto_sub exited: {(await proc.stderr.read()).decode()}")  # type: ignore[union-attr]
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)


# ------------------------------------------------------------------------------------------------ cpu


class CpuMeter:
    """CPU seconds (user + system) that groups of processes spend between `start()` and `stop()`.

    Groups: the given pids by name, plus every process whose name is `postgres` (the machine's PostgreSQL:
    other sessions' queries count too, so it is an upper bound) and every `mosquitto_pub` (the load)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.t0 = 0.0
        self.wall = 0.0

    def _sample(self) -> dict[str, float]:
        import psutil

        out = {}
        for name, pids in self.groups.items():
            total = 0.0
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    t = psutil.Process(pid).cpu_times()
                    total += t.user + t.system
            out[name] = total
        by_name: dict[str, float] = {"postgres": 0.0, "mosquitto_pub": 0.0}
        for proc in psutil.process_iter(["name", "cpu_times"]):
            n = proc.info["name"]
            if n in by_name and proc.info["cpu_times"] is not None:
                by_name[n] += proc.info["cpu_times"].user + proc.info["cpu_times"].system
        out.update(by_name)
        return out

    def start(self) -> None:
        self.before = self._sample()
        self.t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        self.wall = time.perf_counter() - self.t0
        after = self._sample()
        # mosquitto_pub processes exit during the run: their CPU is not sampled (shown as what was seen)
        self.used = {k: max(0.0, after.get(k, 0.0) - self.before.get(k, 0.0)) for k in after}
        return self.used

    def render(self, messages: int) -> str:
        parts = [f"{k} {v:.2f} s ({1e6 * v / messages:.0f} µs/msg, {v / self.wall:.2f} cores)"
                 for k, v in self.used.items() if k != "mosquitto_pub"]
        return f"CPU over {self.wall:.2f} s wall: " + "; ".join(parts)


# ------------------------------------------------------------------------------------------- reporting


def mmm(values: list[float], fmt: str = "{:.0f}") -> str:
    """min / median / max."""
    if not values:
        return "n/a"
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def machine() -> str:
    """nproc, lscpu head, load average, versions (printed at the start of each benchmark)."""
    out = [f"nproc {os.cpu_count()}; python {sys.version.split()[0]}"]
    with contextlib.suppress(Exception):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout.splitlines()
        out += [" ".join(line.split()) for line in lscpu if line.split(":")[0] in
                ("Architecture", "CPU(s)", "Model name", "Thread(s) per core", "Core(s) per socket")]
    with contextlib.suppress(Exception):
        out.append("nats-server " + subprocess.run([_nats_binary(), "--version"], capture_output=True, text=True,
                                                   timeout=5).stdout.strip())
    out.append(f"ulimit -n {_nofile()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return "\n  ".join(out)


def _nofile() -> str:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"{soft} (hard {hard})"


def _nats_binary() -> str:
    from ecohub.connect.nats.server import find_binary  # type: ignore[attr-defined]

    return str(find_binary())


def loadavg() -> str:
    return f"{os.getloadavg()[0]:.2f}"


if __name__ == "__main__":
    print(__doc__)
    print("machine:\n  " + machine())
