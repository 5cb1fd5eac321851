"""The device plane of one hub process: NATS (embedded or a cluster), the auth callout, ingest's durable, revocation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import nats
from gmqtt import Client as MqttClient
from gmqtt.mqtt.constants import MQTTv311
from nats.aio.client import Client as NATS

from ecohub.bus import EventBus
from ecohub.connect.authority import BrokerAuthority
from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.events import DeviceConnectAttempted, DeviceRevoked
from ecohub.connect.nats import jwt
from ecohub.connect.nats.callout import CalloutResponder, ResponderThread
from ecohub.connect.nats.config import CalloutAuth
from ecohub.connect.nats.ingest import MQTT_MSGS, ensure_mqtt_msgs_consumer
from ecohub.connect.nats.revoke import gather, kick
from ecohub.connect.nats.server import EmbeddedNats
from ecohub.connect.service import DeviceService
from ecohub.errors import ErrorCode, InvalidInput, Unavailable
from ecohub.protocol import topic_of
from ecohub.store import now_ms
from ecohub.throttle import Throttle

log = logging.getLogger(__name__)

INGEST_DURABLE = "ecohub-ingest"
# wrong secrets before further connects are refused unchecked: per device id, and (higher: many devices share an
# address behind NAT) per source address
CONNECT_FAILURES = {"did": "20/minute", "host": "300/minute"}
SYSTEM_USER = "ecohub-sys"
# the embedded broker's JetStream store (what devices sent that ingest has not acknowledged yet, sessions, retained
# state): at most this share of the data dir's disk (free space + what the store holds already), and this much
STORE_SHARE = 0.5
STORE_CAP = 8 * 1024**3
STORE_MEMORY = 256 * 1024**2  # the MQTT layer keeps its streams on disk; memory streams are bounded all the same
# what nats-server logs when it drops a device's publish or subscription outside its permissions
# (nats-server 2.15: `… - "<client name = did>" - Publish Violation - Subject "ecohub.<other>.up"`)
VIOLATION = re.compile(r' - "(?P<user>[^"]+)" - (Publish|Subscription) Violation - Subject "(?P<subject>[^"]+)"')
LOG_TIME = re.compile(r"^\[\d+\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+) ")  # the config says logtime_utc


def logged_at(line: str) -> float | None:
    """When nats-server wrote a log line, as a time.monotonic() value (None when the line has no time)."""
    m = LOG_TIME.match(line)
    if m is None:
        return None
    wall = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    return time.monotonic() - max(0.0, time.time() - wall)


@dataclass(frozen=True, slots=True)
class PlaneSecrets:
    """The credentials of the hub's own NATS users and the callout issuer key (kept 0600 in the data dir)."""

    service_password: str
    system_password: str
    issuer_seed: bytes

    @property
    def issuer(self) -> str:
        """The public account key the server trusts for callout answers."""
        return jwt.public_key(jwt.keypair(self.issuer_seed))


def _secret_file(path: Path, make: bytes) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(make)
    return make


def plane_secrets(data_dir: Path, service_password: str) -> PlaneSecrets:
    """The data dir's plane secrets, created on first use (the service password is the hub's existing one)."""
    system = _secret_file(data_dir / "nats" / "system.secret", os.urandom(24).hex().encode()).decode()
    seed = _secret_file(data_dir / "nats" / "issuer.seed", jwt.new_seed())
    return PlaneSecrets(service_password=service_password, system_password=system, issuer_seed=seed)


def store_limit(store_dir: Path, configured: int = 0) -> int:
    """Bytes the embedded broker's JetStream store may take: `configured`, or (0) half of what the disk under
    `store_dir` has for it (free space plus the store's current size), at most STORE_CAP."""
    if configured:
        return configured
    disk = store_dir
    while not disk.exists():
        disk = disk.parent
    used = sum(f.stat().st_size for f in store_dir.rglob("*") if f.is_file()) if store_dir.exists() else 0
    return min(STORE_CAP, int((shutil.disk_usage(disk).free + used) * STORE_SHARE))


def parse_nats_urls(url: str) -> list[str]:
    """`nats://h1:4222,h2:4222` (or `nats://h1:4222,nats://h2:4222`) → one URL per node."""
    urls = []
    for part in url.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.startswith("nats://"):
            part = "nats://" + part
        host_port = part.removeprefix("nats://").rstrip("/")
        host, sep, port = host_port.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise InvalidInput(f"--broker must be 'embedded' or nats://host:port[,host:port…], got {url!r}",
                               code=ErrorCode.INVALID_BROKER)
        urls.append(part)
    if not urls:
        raise InvalidInput("--broker names no NATS server", code=ErrorCode.INVALID_BROKER)
    return urls


class DevicePlane:
    """`async with DevicePlane(...)`: devices' MQTT endpoint and the hub's NATS connections, ready for ingest.

    Embedded (the default): a nats-server child process with JetStream and MQTT on this data dir, supervised and
    never orphaned. Attached (`nats://…`): an existing NATS cluster whose config names this hub's callout issuer.
    Either way this process answers the auth callout for devices (did + secret, permissions of exactly its own
    topics), kicks revoked devices, and makes sure ingest's durable consumer exists before any device publishes.
    """

    def __init__(self, *, devices: DeviceService, bus: EventBus, secrets: PlaneSecrets, data_dir: Path,
                 broker: str = "embedded", host: str = "127.0.0.1", mqtt_port: int = 0, max_payload: int = 16384,
                 public_mqtt: tuple[str, int] | None = None, answer_callout: bool = True,
                 store_max: int = 0) -> None:
        self.devices = devices
        self.bus = bus
        self.secrets = secrets
        self.data_dir = data_dir
        self.broker = broker
        self.host = host
        self.mqtt_port = mqtt_port
        self.max_payload = max_payload
        self.public_mqtt = public_mqtt
        self.answer_callout = answer_callout
        self.store_max = store_max  # bytes of the embedded broker's JetStream store (0: store_limit's default)
        # an attached cluster's topic violations stay in its nodes' logs: then this authority knows only connects
        self.authority = BrokerAuthority(devices, service_password=secrets.service_password,
                                         records_all=broker == "embedded")
        self.server: EmbeddedNats | None = None
        self.urls: list[str] = []
        self.nc: NATS | None = None
        self.sys: NATS | None = None
        self.responder: CalloutResponder | None = None
        self._callout: ResponderThread | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def embedded(self) -> bool:
        """Whether this process runs the NATS server itself."""
        return self.broker == "embedded"

    @property
    def mqtt_endpoint(self) -> tuple[str, int]:
        """Where devices connect (host, port)."""
        if self.public_mqtt is not None:
            return self.public_mqtt
        if self.server is not None:
            return self.server.host, self.server.mqtt_port
        return self.host, self.mqtt_port

    def _auth(self) -> CalloutAuth:
        return CalloutAuth(issuer=self.secrets.issuer, service_user=SERVICE_USER,
                           service_password=self.secrets.service_password, system_user=SYSTEM_USER,
                           system_password=self.secrets.system_password,
                           max_file=store_limit(self.data_dir / "nats", self.store_max), max_mem=STORE_MEMORY)

    async def __aenter__(self) -> DevicePlane:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop()

    async def _start(self) -> None:
        if self.embedded:
            # the broker's limit is the outer wall (a 100 MB publish never gets in); the pipeline's smaller
            # device limit turns a merely oversized message into a dead letter with its size
            self.server = EmbeddedNats(self.data_dir / "nats", host=self.host, mqtt_port=self.mqtt_port,
                                       max_payload=self.max_payload, auth=self._auth(),
                                       server_name="ecohub-embedded")
            try:
                await self.server.start()
            except (OSError, RuntimeError, TimeoutError) as err:
                raise Unavailable(f"the embedded NATS server did not start: {err}",
                                  code=ErrorCode.BROKER_UNAVAILABLE) from err
            self.urls = [self.server.url]
        else:
            self.urls = parse_nats_urls(self.broker)
        self.nc = await self._connect(SERVICE_USER, self.secrets.service_password, "ecohub-service")
        self.sys = await self._connect(SYSTEM_USER, self.secrets.system_password, "ecohub-system")
        if self.answer_callout:
            loop = asyncio.get_running_loop()

            def observe(did: str, host: str, allowed: bool, reason: str) -> None:  # on the callout's thread
                loop.call_soon_threadsafe(self._observe_connect, did, host, allowed, reason)

            self.responder = CalloutResponder(self.secrets.issuer_seed, self._verify,
                                              failures={k: Throttle(v, what="failed device connects")
                                                        for k, v in CONNECT_FAILURES.items()},
                                              observe=observe)
            self._callout = ResponderThread(self.urls, SERVICE_USER, self.secrets.service_password, self.responder)
            await self._callout.start()
        await self.ensure_ingest_durable()
        self.bus.subscribe(DeviceRevoked, self._on_revoked)
        if self.server is not None:
            self._tasks.append(asyncio.create_task(self._watch_violations(self.server.log_file),
                                                   name="nats-violations"))

    async def _connect(self, user: str, password: str, name: str) -> NATS:
        try:
            return await nats.connect(servers=self.urls, user=user, password=password, name=name,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5,
                                      allow_reconnect=True)
        except Exception as err:
            raise Unavailable(f"cannot reach NATS at {', '.join(self.urls)} as {user}: {err}",
                              code=ErrorCode.BROKER_UNAVAILABLE) from err

    async def ensure_ingest_durable(self) -> None:
        """The durable on `$MQTT_msgs` that keeps every acknowledged device publish until ingest acks it.

        The MQTT layer creates its streams on the first MQTT connect in the account, so the hub makes one
        (as its service user) when they are not there yet. Publishes made while the durable does not exist would
        not be kept: it is created before devices are told where to connect, and never deleted.
        """
        assert self.nc is not None
        js = self.nc.jetstream()
        try:
            await js.stream_info(MQTT_MSGS)
        except Exception:
            await self._touch_mqtt()
        await ensure_mqtt_msgs_consumer(self.nc, durable=INGEST_DURABLE, max_ack_pending=20_000, max_deliver=10,
                                        ack_wait_s=30.0)

    async def _mqtt_listener(self) -> tuple[str, int]:
        """Where the MQTT layer of the server this process is connected to listens.

        Embedded: the child's port. Attached: the node's own answer (VARZ over the system account), since an
        API or ingest process is given only the cluster's client URLs, and the first one started on a fresh
        cluster has to make the MQTT layer create its streams."""
        if self.server is not None:
            return self.server.host, self.server.mqtt_port
        assert self.sys is not None
        answers = await gather(self.sys, "$SYS.REQ.SERVER.PING.VARZ", {}, window=2.0, expected=1)
        mqtt = next(((a.get("data") or {}).get("mqtt") or {} for a in answers), {})
        if not mqtt.get("port"):
            raise Unavailable(f"the NATS server at {self.sys.connected_url} has no MQTT listener (mqtt {{}} block)",
                              code=ErrorCode.BROKER_UNAVAILABLE)
        host = mqtt.get("host") or ""
        if host in ("", "0.0.0.0", "::", "[::]") and self.sys.connected_url is not None:
            host = self.sys.connected_url.hostname or "127.0.0.1"
        return host, int(mqtt["port"])

    async def _touch_mqtt(self) -> None:
        host, port = await self._mqtt_listener()
        client = MqttClient(f"ecohub-setup-{os.getpid()}")
        client.set_auth_credentials(SERVICE_USER, self.secrets.service_password)
        try:
            await client.connect(host, port, version=MQTTv311, keepalive=10)
        except OSError as err:
            raise Unavailable(f"cannot reach the MQTT listener {host}:{port} to set up its streams: {err}",
                              code=ErrorCode.BROKER_UNAVAILABLE) from err
        await client.disconnect()
        assert self.nc is not None
        for _ in range(100):
            try:
                await self.nc.jetstream().stream_info(MQTT_MSGS)
                return
            except Exception:
                await asyncio.sleep(0.05)
        raise Unavailable("NATS did not set up its MQTT streams", code=ErrorCode.BROKER_UNAVAILABLE)

    def _verify(self, did: str, secret: str) -> bool:
        # on the responder's own thread and loop (ResponderThread), which carries nothing else: a cache miss reads
        # the cell database right there, with no hop to a worker thread per CONNECT
        return self.authority.authenticate(client_id=did, username=did, password=secret, will_topic=None)

    def _observe_connect(self, did: str, host: str, allowed: bool, reason: str) -> None:
        """Every device CONNECT the callout decided, as an event (the security audit records source addresses and
        failures from it)."""
        self.bus.publish([DeviceConnectAttempted(did, host, allowed, reason, now_ms())])

    async def _on_revoked(self, event: DeviceRevoked) -> None:
        """Drop every live session of a revoked device, on every node (its secret no longer verifies)."""
        if self.sys is None or self.sys.is_closed or self.sys.is_draining:
            return  # stopping: the sessions end with the server, and the secret is revoked already
        try:
            kicked = await kick(self.sys, event.did)
            log.info("revoked %s: %d session(s) dropped", event.did, kicked)
        except Exception:
            log.warning("could not kick %s", event.did, exc_info=True)

    async def _watch_violations(self, log_file: Path) -> None:
        """Record the publishes and subscriptions the embedded server refused a device (the certify suite reads
        them through the API), by following the server's log."""
        offset = await asyncio.to_thread(_size, log_file)
        while True:
            await asyncio.sleep(0.2)
            offset, text = await asyncio.to_thread(_read_from, log_file, offset)
            for line in text.splitlines():
                m = VIOLATION.search(line)
                if m is not None:
                    action = "publish" if m.group(2) == "Publish" else "subscribe"
                    # stamped when the server refused it, not when this loop (0.2 s polls, a busy hub) read it
                    self.authority.record(m.group("user"), action, topic_of(m.group("subject")),
                                          "outside the device's permissions", at=logged_at(line))

    async def _stop(self) -> None:
        self.bus.unsubscribe(DeviceRevoked, self._on_revoked)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._callout is not None:
            with contextlib.suppress(Exception):
                await self._callout.stop()
            self._callout = None
        for conn in (self.nc, self.sys):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.drain(), 5)
        self.nc = self.sys = None
        if self.server is not None:
            await self.server.stop()
            self.server = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> tuple[int, str]:
    """What was appended to a log since `offset` (from the start again when it was rotated or truncated)."""
    size = _size(path)
    if size < offset:
        offset = 0
    if size == offset:
        return offset, ""
    with path.open("rb") as f:
        f.seek(offset)
        return size, f.read(size - offset).decode(errors="replace")
