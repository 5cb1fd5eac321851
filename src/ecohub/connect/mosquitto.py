"""The Mosquitto 2 broker adapter: a managed `mosquitto` process with the dynamic-security plugin, run over MQTT.

The adapter interface every external-broker adapter offers (an EMQX one can follow the same shape):

- ``async with adapter:`` start (or reach) the broker and its control channel;
- ``await device_added(did, secret)``: create (or re-key) the device's broker client and its own-topics role;
- ``await device_removed(did)``: disable the client (the broker drops its session at once) and delete it;
- ``await drop(did)``: disconnect a device's session without changing its credentials;
- ``watch(devices, bus)``: hook into provisioning (clear secret, in-process only) and revocation events.

Clear secrets are never stored by ecohub: the broker keeps its own salted PBKDF2 hash (in the dynsec JSON).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.events import DeviceRevoked
from ecohub.connect.mqtt import Endpoint, HubClient
from ecohub.errors import EcohubError, ErrorCode, Timeout, Unavailable

if TYPE_CHECKING:
    from ecohub.bus import EventBus
    from ecohub.connect.service import DeviceService

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
SERVICE_ROLE = "ecohub-service"
PLUGIN_NAME = "mosquitto_dynamic_security.so"
PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib/mosquitto", "/usr/lib",
               "/usr/local/lib", "/opt/homebrew/lib", "/usr/local/opt/mosquitto/lib")
PBKDF2_ITERATIONS = 101  # what mosquitto_ctrl writes; secrets are 256-bit random, so iterations add nothing
COMMAND_TIMEOUT_S = 10.0
START_TIMEOUT_S = 10.0
# Errors of idempotent clean-up steps that only mean "already in the wanted state".
_HARMLESS = ("not found", "already exists", "already has role")


def find_mosquitto() -> str | None:
    """The mosquitto binary (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


def find_dynsec_plugin() -> Path | None:
    """The dynamic-security plugin shipped with Mosquitto 2 (ECOHUB_MOSQUITTO_PLUGIN overrides the search)."""
    env = os.environ.get("ECOHUB_MOSQUITTO_PLUGIN")
    candidates = [Path(env)] if env else [Path(d) / PLUGIN_NAME for d in PLUGIN_DIRS]
    return next((p for p in candidates if p.is_file()), None)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> dict[str, Any]:
    """The dynsec JSON password fields (PBKDF2-SHA512, as mosquitto_ctrl writes them)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": iterations}


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def service_acls() -> list[dict[str, Any]]:
    """The hub's own clients: everything under ecohub/ (shared subscriptions too) and the dynsec control topics."""
    acls = [_acl("publishClientSend", "ecohub/#"), _acl("publishClientReceive", "ecohub/#"),
            _acl("subscribePattern", "ecohub/#"), _acl("subscribePattern", "$share/+/ecohub/#"),
            _acl("unsubscribePattern", "ecohub/#"), _acl("unsubscribePattern", "$share/+/ecohub/#")]
    for acltype in ("publishClientSend", "publishClientReceive", "subscribePattern", "unsubscribePattern"):
        acls.append(_acl(acltype, "$CONTROL/dynamic-security/#"))
    return acls


def device_role(did: str) -> str:
    """The role name holding one device's ACL."""
    return f"ecohub-device-{did}"


def device_acls(did: str) -> list[dict[str, Any]]:
    """A device publishes only its own up/state and subscribes to / receives only its own down."""
    down = f"ecohub/{did}/down"
    return [_acl("publishClientSend", f"ecohub/{did}/up"), _acl("publishClientSend", f"ecohub/{did}/state"),
            _acl("subscribeLiteral", down), _acl("unsubscribeLiteral", down), _acl("publishClientReceive", down)]


def initial_dynsec(service_password: str) -> dict[str, Any]:
    """A dynsec config with only the hub's service user; everything not granted by a role is denied."""
    return {
        "clients": [{"username": SERVICE_USER, "textname": "ecohub hub service", **hash_password(service_password),
                     "roles": [{"rolename": SERVICE_ROLE}]}],
        "roles": [{"rolename": SERVICE_ROLE, "acls": service_acls()}],
        "groups": [],
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                             "unsubscribe": True},
    }


def write_dynsec(path: Path, service_password: str) -> None:
    """Create the dynsec JSON, or re-key the service user in an existing one (devices are kept)."""
    if path.exists():
        config = json.loads(path.read_text())
        clients = [c for c in config.get("clients", []) if c.get("username") != SERVICE_USER]
        roles = [r for r in config.get("roles", []) if r.get("rolename") != SERVICE_ROLE]
        fresh = initial_dynsec(service_password)
        config["clients"] = fresh["clients"] + clients
        config["roles"] = fresh["roles"] + roles
    else:
        config = initial_dynsec(service_password)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=1)
    os.replace(tmp, path)


def mosquitto_conf(*, host: str, port: int, plugin: Path, dynsec: Path, work_dir: Path,
                   persistence: bool = True) -> str:
    """A mosquitto.conf: one listener, no anonymous clients, dynamic security as the only auth/ACL source."""
    lines = [
        "# generated by ecohub (connect.mosquitto); edits are overwritten at the next start",
        "per_listener_settings false",
        "allow_anonymous false",
        f"listener {port} {host}",
        f"plugin {plugin}",
        f"plugin_opt_config_file {dynsec}",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {work_dir}/",
        f"log_dest file {work_dir / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "max_queued_messages 10000",
        # also the Receive Maximum in CONNACK: at the default (20) gmqtt raises OverflowError on the 20th
        # unacknowledged QoS 1 packet of a hub client (pipelined dynsec commands, concurrent commands)
        "max_inflight_messages 1000",
        # without it Mosquitto's small writes (PUBACK + PUBLISH) wait for the peer's delayed ACK: +40 ms per hop
        "set_tcp_nodelay true",
    ]
    if os.geteuid() == 0:  # as root, mosquitto would switch to the `mosquitto` user and lose our files
        lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class ManagedMosquitto:
    """A `mosquitto -c <generated conf>` child process with dynamic security, files under `work_dir`."""

    def __init__(self, work_dir: Path, *, host: str, port: int, service_password: str,
                 persistence: bool = True) -> None:
        self.work_dir = work_dir
        self.host = host
        self.port = port
        self.service_password = service_password
        self.persistence = persistence
        self.conf_path = work_dir / "mosquitto.conf"
        self.dynsec_path = work_dir / "dynamic-security.json"
        self.log_path = work_dir / "mosquitto.log"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def __aenter__(self) -> ManagedMosquitto:
        binary, plugin = find_mosquitto(), find_dynsec_plugin()
        if binary is None:
            raise Unavailable("the mosquitto binary is not installed (Debian: apt install mosquitto)",
                              code=ErrorCode.MOSQUITTO_MISSING)
        if plugin is None:
            raise Unavailable(f"{PLUGIN_NAME} not found; set ECOHUB_MOSQUITTO_PLUGIN to its path",
                              code=ErrorCode.MOSQUITTO_MISSING)
        if _listening(self.host, self.port):
            raise Unavailable(f"MQTT port {self.port} on {self.host} is in use; pick another with --mqtt-port",
                              code=ErrorCode.PORT_IN_USE)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        write_dynsec(self.dynsec_path, self.service_password)
        self.conf_path.write_text(mosquitto_conf(host=self.host, port=self.port, plugin=plugin,
                                                 dynsec=self.dynsec_path, work_dir=self.work_dir,
                                                 persistence=self.persistence))
        self._proc = await asyncio.create_subprocess_exec(
            binary, "-c", str(self.conf_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.host, self.port):
            if self._proc.returncode is not None or time.monotonic() > deadline:
                err = b""
                if self._proc.returncode is not None and self._proc.stderr is not None:
                    err = await self._proc.stderr.read()
                await self._stop()
                raise Unavailable(f"mosquitto did not start on {self.host}:{self.port}: "
                                  f"{(err.decode(errors='replace') or self._log_tail()).strip()}",
                                  code=ErrorCode.BROKER_UNAVAILABLE)
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop()

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _log_tail(self, lines: int = 10) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class DynsecError(EcohubError):
    """The dynamic-security plugin refused a command."""

    code = ErrorCode.DYNSEC_REFUSED
    status = 502


class DynsecClient:
    """Sends commands to `$CONTROL/dynamic-security/v1` and matches the responses by correlation data."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client = HubClient(endpoint, client_id=f"ecohub-dynsec-{secrets.token_hex(4)}",
                                 on_message=self._on_message)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> DynsecClient:
        await self._client.__aenter__()
        self._client.subscribe(RESPONSE_TOPIC)
        return self

    @property
    def connected(self) -> bool:
        """True while the control connection is up."""
        return self._client.connected.is_set()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for fut in self._waiting.values():
            fut.cancel()
        await self._client.__aexit__(exc_type, exc, tb)

    async def _on_message(self, topic: str, payload: bytes) -> None:
        if topic != RESPONSE_TOPIC:
            return
        try:
            responses = json.loads(payload).get("responses", [])
        except (ValueError, AttributeError):
            log.warning("unreadable dynsec response: %r", payload[:200])
            return
        for response in responses:
            fut = self._waiting.pop(str(response.get("correlationData", "")), None)
            if fut is not None and not fut.done():
                fut.set_result(response)

    def send(self, commands: list[dict[str, Any]]) -> list[asyncio.Future[dict[str, Any]]]:
        """Publish the commands in one message now (in call order); futures resolve to the responses."""
        loop = asyncio.get_running_loop()
        futures = []
        batch = []
        for command in commands:
            key = secrets.token_hex(8)
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._waiting[key] = fut
            futures.append(fut)
            batch.append({**command, "correlationData": key})
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": batch}).encode(), qos=1)
        return futures

    async def execute(self, commands: list[dict[str, Any]], *, tolerate: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Run commands; a response error not matching `tolerate` raises DynsecError."""
        return await self.gather(self.send(commands), tolerate=tolerate)

    async def gather(self, futures: list[asyncio.Future[dict[str, Any]]], *,
                     tolerate: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Wait for the responses of `send`."""
        try:
            responses = await asyncio.wait_for(asyncio.gather(*futures), timeout=COMMAND_TIMEOUT_S)
        except TimeoutError as err:
            for fut in futures:
                fut.cancel()
            raise Timeout(f"the dynamic-security plugin did not answer within {COMMAND_TIMEOUT_S:.0f} s",
                          code=ErrorCode.BROKER_TIMEOUT) from err
        for response in responses:
            error = response.get("error")
            if error and not any(t in str(error).lower() for t in tolerate):
                raise DynsecError(f"dynsec {response.get('command')}: {error}")
        return list(responses)


class MosquittoBroker:
    """Mosquitto 2 with dynamic security: managed (ecohub starts it) or external (ecohub only manages clients)."""

    kind = "mosquitto"
    mqtt_version = 5

    def __init__(self, *, host: str, port: int, service_password: str, work_dir: Path | None = None,
                 managed: bool = True, persistence: bool = True) -> None:
        if managed and work_dir is None:
            raise ValueError("a managed Mosquitto needs a work_dir")
        self.host = host
        self.port = port
        self.endpoint = Endpoint(host, port, self.mqtt_version, service_password)
        self.process = ManagedMosquitto(work_dir, host=host, port=port, service_password=service_password,
                                        persistence=persistence) if managed and work_dir else None
        self._control: DynsecClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._watching: tuple[DeviceService, EventBus] | None = None
        self.failures: list[str] = []

    async def __aenter__(self) -> MosquittoBroker:
        self._loop = asyncio.get_running_loop()
        if self.process is not None:
            await self.process.__aenter__()
        try:
            self._control = await DynsecClient(self.endpoint).__aenter__()
            if self.process is None:
                await self._grant_service_role()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._close()

    async def _close(self) -> None:
        self.unwatch()
        await self.settle()
        if self._control is not None:
            await self._control.__aexit__(None, None, None)
            self._control = None
        if self.process is not None:
            await self.process.__aexit__(None, None, None)
        self._loop = None

    async def _grant_service_role(self) -> None:
        """External broker: give the service user the ecohub role (dynsec kicks it for that, so reconnect)."""
        if SERVICE_ROLE in await self._service_roles():
            return
        control = self.control
        control.send([{"command": "createRole", "rolename": SERVICE_ROLE, "acls": service_acls()},
                      {"command": "addClientRole", "username": SERVICE_USER, "rolename": SERVICE_ROLE}])
        for _ in range(int(START_TIMEOUT_S / 0.02)):  # the role change disconnects the service user
            if not control.connected:
                break
            await asyncio.sleep(0.02)
        await control.__aexit__(None, None, None)
        self._control = await DynsecClient(self.endpoint).__aenter__()
        if SERVICE_ROLE not in await self._service_roles():
            raise DynsecError(f"could not give {SERVICE_USER!r} the role {SERVICE_ROLE!r}", code=ErrorCode.DYNSEC_SETUP)

    async def _service_roles(self) -> set[str]:
        client = await self.get_client(SERVICE_USER)
        if client is None:
            raise DynsecError(f"the broker has no dynsec client {SERVICE_USER!r}", code=ErrorCode.DYNSEC_SETUP)
        return {str(r.get("rolename")) for r in client.get("roles", [])}

    @property
    def control(self) -> DynsecClient:
        """The control client (only while the adapter runs)."""
        if self._control is None:
            raise Unavailable("the Mosquitto adapter is not running", code=ErrorCode.BROKER_UNAVAILABLE)
        return self._control

    # -- the adapter interface -------------------------------------------------------------------------------

    async def device_added(self, did: str, secret: str) -> None:
        """Create the device's client (client id = username = did) with a role allowing exactly its own topics."""
        await self.control.gather(self._send_added(did, secret), tolerate=_HARMLESS)

    async def device_removed(self, did: str) -> None:
        """Disable the client (Mosquitto disconnects it at once), then delete it and its role."""
        await self.control.gather(self._send_removed(did), tolerate=_HARMLESS)

    async def drop(self, did: str) -> None:
        """Disconnect a device's session, keeping its credentials (2.0 has no kickClient: disable + enable)."""
        await self.control.execute([{"command": "disableClient", "username": did},
                                    {"command": "enableClient", "username": did}], tolerate=_HARMLESS)

    async def get_client(self, did: str) -> dict[str, Any] | None:
        """The broker's record of a device client, or None."""
        (response,) = await self.control.execute([{"command": "getClient", "username": did}], tolerate=_HARMLESS)
        client = response.get("data", {}).get("client")
        return client if isinstance(client, dict) else None

    def _send_added(self, did: str, secret: str) -> list[asyncio.Future[dict[str, Any]]]:
        role = device_role(did)
        return self.control.send([
            {"command": "deleteClient", "username": did},  # re-keying (unbinding) replaces the client
            {"command": "deleteRole", "rolename": role},
            {"command": "createRole", "rolename": role, "acls": device_acls(did)},
            {"command": "createClient", "username": did, "clientid": did, "password": secret,
             "roles": [{"rolename": role}]},
        ])

    def _send_removed(self, did: str) -> list[asyncio.Future[dict[str, Any]]]:
        return self.control.send([
            {"command": "disableClient", "username": did},
            {"command": "deleteClient", "username": did},
            {"command": "deleteRole", "rolename": device_role(did)},
        ])

    # -- in-process hooks ------------------------------------------------------------------------------------

    def watch(self, devices: DeviceService, bus: EventBus) -> None:
        """Create broker clients when this process provisions or re-keys devices; remove them on revocation."""
        devices.credential_hooks.append(self.credentials_issued)
        bus.subscribe(DeviceRevoked, self.on_revoked)
        self._watching = (devices, bus)

    def unwatch(self) -> None:
        """Stop reacting to provisioning and revocation."""
        if self._watching is None:
            return
        devices, bus = self._watching
        with contextlib.suppress(ValueError):
            devices.credential_hooks.remove(self.credentials_issued)
        bus.unsubscribe(DeviceRevoked, self.on_revoked)
        self._watching = None

    def credentials_issued(self, did: str, secret: str) -> None:
        """Hook of DeviceService (any thread): blocks until the broker confirms, unless called on the hub's loop."""
        self._dispatch(lambda: self._send_added(did, secret))

    def on_revoked(self, event: DeviceRevoked) -> None:
        """Bus handler (any thread): remove the device's client so the broker drops it."""
        self._dispatch(lambda: self._send_removed(event.did))

    def _dispatch(self, send: Callable[[], list[asyncio.Future[dict[str, Any]]]]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise Unavailable("the Mosquitto adapter is not running", code=ErrorCode.BROKER_UNAVAILABLE)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            # On the loop we cannot block: the commands are published now (in order), the answers checked later.
            futures = send()
            self._track(loop.create_task(self.control.gather(futures, tolerate=_HARMLESS)))
            return
        future = asyncio.run_coroutine_threadsafe(self._send_and_wait(send), loop)
        try:
            future.result(timeout=COMMAND_TIMEOUT_S + 2)
        except TimeoutError as err:
            future.cancel()
            raise Timeout("the Mosquitto adapter did not answer in time", code=ErrorCode.BROKER_TIMEOUT) from err

    async def _send_and_wait(self, send: Callable[[], list[asyncio.Future[dict[str, Any]]]]) -> None:
        await self.control.gather(send(), tolerate=_HARMLESS)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._pending.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._pending.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.failures.append(str(t.exception()))
                log.error("Mosquitto adapter: %s", t.exception())

        task.add_done_callback(done)

    async def settle(self) -> None:
        """Wait for commands issued from the event loop's thread to be answered."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
