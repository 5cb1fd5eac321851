"""Shared by the no-loss tests: reporting devices that count PUBACKs (and fail over), CLI and nats-server processes,
and what the cell database holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import paho.mqtt.client as paho
from nats.aio.client import Client as NATS
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from ecohub.bootstrap import Services, service_password
from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.nats.ingest import MQTT_MSGS
from ecohub.connect.nats.server import find_binary, free_port, http_status
from ecohub.connect.plane import INGEST_DURABLE, plane_secrets
from ecohub.protocol import Topic
from ecohub.telemetry.models import Sample
from tests.helpers import eventually

SRC = Path(__file__).resolve().parents[2] / "src"
ECOHUB = [sys.executable, "-m", "ecohub.cli"]
KEY = (11, 1)  # cuco.plug.v3: uint16 0..65535, notify


def report(msg_id: int, value: int) -> bytes:
    """A device's `properties_changed` of one property (MIoT JSON-RPC, as on the wire)."""
    return json.dumps({"id": msg_id, "method": "properties_changed",
                       "params": [{"siid": KEY[0], "piid": KEY[1], "value": value}]}).encode()


def value_of(msg_id: int) -> int:
    """The value message `msg_id` carries (distinct per id, within the property's range)."""
    return msg_id % 65536


class Reporter(threading.Thread):
    """A device (paho, MQTT 3.1.1, QoS 1) sending reports 1..count with up to `window` unacknowledged.

    `acked` holds the ids whose PUBACK it saw. When the oldest outstanding report gets no PUBACK within
    `puback_timeout`, or a connect fails, it moves to the next port in `ports` (another node, or the same
    hub restarted) and resends everything not yet acknowledged, with the same id and payload: what a real
    device's firmware does."""

    def __init__(self, did: str, secret: str, ports: list[int], *, count: int, first: int = 0, window: int = 20,
                 puback_timeout: float = 5.0, deadline_s: float = 150.0, host: str = "127.0.0.1",
                 pause_s: float = 0.0) -> None:
        super().__init__(name=f"reporter-{did}", daemon=True)
        self.did, self.secret, self.ports, self.host = did, secret, ports, host
        self.count, self.node, self.window, self.puback_timeout = count, first, window, puback_timeout
        self.deadline = time.monotonic() + deadline_s
        self.pause_s = pause_s
        self.acked: set[int] = set()  # written by this thread only; read it through `acked_now`
        self._lock = threading.Lock()
        self.failovers: list[str] = []
        self._client: paho.Client | None = None

    def acked_now(self) -> set[int]:
        """A copy of the PUBACKed ids, safe while the thread runs."""
        with self._lock:
            return set(self.acked)

    def _ack(self, i: int) -> None:
        with self._lock:
            self.acked.add(i)

    def _connect(self) -> paho.Client | None:
        port = self.ports[self.node]
        connected = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.did, protocol=paho.MQTTv311, clean_session=True)
        c.username_pw_set(self.did, self.secret)
        c.max_inflight_messages_set(max(self.window, 1))
        c.on_connect = lambda cl, u, f, rc, p: connected.set() if not rc.is_failure else None
        try:
            c.connect(self.host, port, keepalive=30)
        except OSError as err:
            self._fail(f"connect :{port} failed: {err}")
            return None
        c.loop_start()
        if not connected.wait(3.0):
            c.loop_stop()
            c.disconnect()
            self._fail(f"no CONNACK from :{port}")
            return None
        return c

    def _fail(self, why: str) -> None:
        self.failovers.append(why)
        self.node = (self.node + 1) % len(self.ports)
        time.sleep(0.2)

    def run(self) -> None:
        todo = deque(range(1, self.count + 1))
        while (todo or self._client) and time.monotonic() < self.deadline:
            c = self._client or self._connect()
            if c is None:
                continue
            self._client = c
            outstanding: deque[tuple[int, paho.MQTTMessageInfo]] = deque()
            broken = False
            while (todo or outstanding) and not broken and time.monotonic() < self.deadline:
                while todo and len(outstanding) < self.window:
                    i = todo.popleft()
                    outstanding.append((i, c.publish(Topic.up(self.did), report(i, value_of(i)), qos=1)))
                    if self.pause_s:
                        time.sleep(self.pause_s)
                i, info = outstanding[0]
                try:
                    info.wait_for_publish(self.puback_timeout)
                except (RuntimeError, ValueError):
                    pass
                if _published(info):
                    self._ack(i)
                    outstanding.popleft()
                else:
                    broken = True
            # everything still outstanding is sent again on the next connection (a PUBACK may have been lost too)
            for i, info in outstanding:
                if _published(info):
                    self._ack(i)
                else:
                    todo.appendleft(i)
            if broken:
                c.loop_stop()
                c.disconnect()
                self._client = None
                self._fail(f"no PUBACK for id {outstanding[0][0]} within {self.puback_timeout}s")
                todo = deque(sorted(todo))
            elif not todo:
                c.disconnect()
                c.loop_stop()
                self._client = None


def _published(info: paho.MQTTMessageInfo) -> bool:
    """Whether the PUBACK came (paho raises instead of answering once the connection is gone)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False


def start_reporters(devices: list[Any], ports: list[int], *, count: int, **kw: Any) -> list[Reporter]:
    """One Reporter thread per provisioned device, spread over `ports` (device k starts on port k mod n)."""
    reporters = [Reporter(d.did, d.secret, ports, count=count, first=k % len(ports), **kw)
                 for k, d in enumerate(devices)]
    for r in reporters:
        r.start()
    return reporters


def acked_pairs(reporters: list[Reporter]) -> set[tuple[str, int]]:
    """Every (did, id) a device saw PUBACKed."""
    return {(r.did, i) for r in reporters for i in r.acked_now()}


def stored(services: Services, cell: str = "eu") -> Counter[tuple[str, int]]:
    """(did, msg_id) → how many telemetry rows the cell database holds for it (1 = stored exactly once)."""
    with services.dbs.cell_session(cell) as s:
        return Counter((did, int(mid)) for did, mid in s.execute(select(Sample.did, Sample.msg_id)).tuples())


async def wait_all_stored(services: Services, acked: set[tuple[str, int]], *, timeout: float = 90.0,  # noqa: ASYNC109
                          on_wait: Any = None) -> Counter[tuple[str, int]]:
    """Wait until every PUBACKed message is in telemetry; then return the counts (checked for duplicates)."""
    rows: Counter[tuple[str, int]] = Counter()

    def all_there() -> bool:
        nonlocal rows
        if on_wait is not None:
            on_wait()
        rows = stored(services)
        return acked <= set(rows)

    try:
        await eventually(all_there, timeout=timeout, interval=0.5)
    except AssertionError:
        missing = sorted(acked - set(rows))
        raise AssertionError(f"{len(missing)} of {len(acked)} PUBACKed messages not stored, "
                             f"e.g. {missing[:5]}") from None
    return rows


def assert_exactly_once(rows: Counter[tuple[str, int]], acked: set[tuple[str, int]]) -> None:
    """Every PUBACKed (did, id) stored, none of anything twice."""
    assert acked <= set(rows), f"{len(acked - set(rows))} PUBACKed messages were not stored"
    twice = {k: n for k, n in rows.items() if n > 1}
    assert not twice, f"{len(twice)} messages stored more than once, e.g. {list(twice.items())[:5]}"


# -- processes ------------------------------------------------------------------------------------------------


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an `ecohub` subprocess on this checkout's source and a data dir."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{path}" if path else str(SRC),
            "ECOHUB_DATA_DIR": str(data_dir), **extra}


@dataclass
class Proc:
    """A subprocess whose output goes to a log file (a pipe nobody drains would block it)."""

    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=False)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def tail(self, n: int = 3000) -> str:
        return f"--- {self.name} ({self.log})\n{self.log.read_text(errors='replace')[-n:] if self.log.exists() else ''}"


def ecohub(name: str, args: list[str], data_dir: Path, logs: Path) -> Proc:
    """`ecohub ARGS` as a subprocess on `data_dir` (not started)."""
    return Proc(name, [*ECOHUB, *args], logs / f"{name}.log", cli_env(data_dir))


def children(pid: int) -> list[int]:
    """The live child processes of pid (e.g. the worker processes of `ecohub ingest`)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return sorted(out)


def worker_processes(pid: int) -> list[int]:
    """The ingest worker processes `ecohub ingest` (pid) runs (multiprocessing spawn children, not its tracker)."""
    return [c for c in children(pid) if b"spawn_main" in _cmdline(c)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pid_alive(pid: int) -> bool:
    """Whether pid is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class NatsNode:
    """One nats-server started with the config `ecohub broker config` prints for this data dir's hub."""

    name: str
    data_dir: Path
    store: Path
    client_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def configure(self, routes: list[int] | None = None) -> Path:
        """Write this node's config through the CLI (the operator's way)."""
        conf = self.store.parent / f"{self.name}.conf"
        args = ["broker", "config", "--data-dir", str(self.data_dir), "--node-name", self.name, "--host", "127.0.0.1",
                "--client-port", str(self.client_port), "--mqtt-port", str(self.mqtt_port),
                "--monitor-port", str(self.monitor_port), "--store-dir", str(self.store), "--output", str(conf)]
        if self.cluster_port is not None:
            args += ["--cluster-port", str(self.cluster_port), "--cluster-host", "127.0.0.1",
                     "--routes", ",".join(f"127.0.0.1:{p}" for p in routes or [])]
        subprocess.run([*ECOHUB, *args], env=cli_env(self.data_dir), check=True, capture_output=True, timeout=60)
        return conf

    def start(self, conf: Path) -> NatsNode:
        self.proc = Proc(self.name, [find_binary(), "-c", str(conf)], self.store.parent / f"{self.name}.log",
                         dict(os.environ)).start()
        return self

    async def wait_healthy(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Until /healthz says 200 (JetStream included: in a cluster, a meta leader is elected)."""

        async def ok() -> bool:
            assert self.proc is not None and self.proc.alive(), self.proc.tail() if self.proc else "not started"
            return await http_status("127.0.0.1", self.monitor_port, "/healthz") == 200

        await eventually(ok, timeout=timeout, interval=0.1)


async def service_nc(data_dir: Path, urls: list[str]) -> NATS:
    """A NATS connection as the hub's service user (reads the ingest durable's state)."""
    plane_secrets(data_dir, service_password(data_dir))
    return await nats.connect(servers=urls, user=SERVICE_USER, password=service_password(data_dir),
                              max_reconnect_attempts=-1, reconnect_time_wait=0.2)


async def durable_state(nc: NATS) -> dict[str, int]:
    """What the ingest durable holds: delivered and unacknowledged, not yet delivered, its limit."""
    info = await nc.jetstream().consumer_info(MQTT_MSGS, INGEST_DURABLE)
    return {"num_ack_pending": info.num_ack_pending, "num_pending": info.num_pending or 0,
            "max_ack_pending": info.config.max_ack_pending or 0, "redelivered": info.num_redelivered}


async def http_ok(url: str, procs: list[Proc]) -> bool:
    """True once `url` answers 200; fails at once (with their logs) when a process died."""
    try:
        async with httpx.AsyncClient(timeout=3) as c:
            return (await c.get(url)).status_code == 200
    except httpx.HTTPError:
        dead = [p for p in procs if not p.alive()]
        assert not dead, "\n".join(p.tail() for p in dead)
        return False
