"""Running a hub in one process: the broker adapter, the ingest worker, commands and the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from ecohub.automate.engine import AutomationEngine
from ecohub.bootstrap import Services
from ecohub.connect.commands import CommandService
from ecohub.connect.nats.server import free_port as free_port  # the one picker, re-exported for the CLI and tests
from ecohub.connect.plane import DevicePlane, plane_secrets
from ecohub.errors import ErrorCode, Unavailable
from ecohub.ota.engine import OtaEngine
from ecohub.ota.lease import Lease, lease_name
from ecohub.ota.relay import EventFeed, OtaRelay
from ecohub.store import now_ms

log = logging.getLogger(__name__)

RUNTIME_FILE = "hub.json"
AppFactory = Callable[[Services], ASGIApp]


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def listen(host: str, port: int, *, what: str, option: str) -> socket.socket:
    """A bound, listening TCP socket on host:port (the server is handed the socket: no port race)."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on an accepted connection only when its proto says
    # TCP, and without it every keep-alive response that uvicorn writes in two pieces (headers, body) waited ~40 ms
    # for the client's delayed ACK (Nagle): /api/v1/health took 44 ms, a command's round trip 56 ms (bench/commands.py)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise Unavailable(f"{what} port {port} on {host} is in use; pick another with {option}",
                          code=ErrorCode.PORT_IN_USE) from err
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def read_runtime(data_dir: Path) -> dict[str, object] | None:
    """The endpoints of a hub running on this data dir, if any."""
    path = data_dir / RUNTIME_FILE
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = info.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return info


async def enter_plane(stack: AsyncExitStack, services: Services, *, broker: str, host: str,
                      mqtt_port: int, answer_callout: bool = True) -> DevicePlane:
    """Start (embedded) or attach (nats://…) the device plane on `stack`."""
    settings = services.settings
    if broker == "embedded" and mqtt_port and not port_is_free(host, mqtt_port):
        raise Unavailable(f"MQTT port {mqtt_port} on {host} is in use; pick another with --mqtt-port",
                          code=ErrorCode.PORT_IN_USE)
    public = (settings.mqtt.public_host, mqtt_port) if settings.mqtt.public_host and broker == "embedded" else None
    plane = DevicePlane(devices=services.devices, bus=services.bus,
                        secrets=plane_secrets(settings.data_dir, services.service_password),
                        data_dir=settings.data_dir, broker=broker, host=host, mqtt_port=mqtt_port,
                        max_payload=settings.mqtt.broker_max_payload, public_mqtt=public, answer_callout=answer_callout,
                        store_max=settings.mqtt.broker_store_max)
    services.plane = await stack.enter_async_context(plane)
    return plane


async def enter_ota_engine(stack: AsyncExitStack, services: Services, plane: DevicePlane) -> OtaEngine:
    """The firmware campaign engine of this process on `stack`: it acts only while it holds its cells' lease, so
    one engine runs however many processes (`ecohub up`, `ecohub api`) start one."""
    nc = plane.nc
    assert nc is not None
    settings = services.settings

    async def publish_down(subject: str, payload: bytes) -> None:
        await nc.publish(subject, payload)

    lease = Lease(services.dbs, lease_name(list(services.dbs.cells)), ttl_s=settings.ota.lease_s)
    services.ota_engine = await stack.enter_async_context(
        OtaEngine(service=services.campaigns, feed=EventFeed(nc), publish=publish_down, lease=lease,
                  base_url=lambda: settings.ota.download_url or services.runtime.http_url, tick_s=settings.ota.tick_s))
    stack.callback(setattr, services, "ota_engine", None)
    return services.ota_engine


@asynccontextmanager
async def running_hub(services: Services, *, app_factory: AppFactory, http_port: int, mqtt_port: int,
                      broker: str = "embedded", host: str = "127.0.0.1") -> AsyncIterator[Services]:
    """Start broker (if embedded), ingest, commands and the API; stop them in reverse order on exit.

    `app_factory` builds the HTTP app (the edge, `ecohub.api.app.create_app`): the composition serves it, never
    imports it."""
    settings = services.settings
    async with AsyncExitStack() as stack:
        # the HTTP socket is bound first, so nothing started after (the NATS server's own ports) can take it
        http_socket = listen(host, http_port, what="HTTP", option="--http-port")
        stack.callback(http_socket.close)
        plane = await enter_plane(stack, services, broker=broker, host=host, mqtt_port=mqtt_port)
        assert plane.nc is not None
        # what ingest sees of firmware updates goes to the OTA engine's stream (from the first message on)
        await stack.enter_async_context(OtaRelay(bus=services.bus, nc=plane.nc))
        # one worker in this process on the shared durable (`ecohub ingest` adds more, in other processes)
        worker = services.ingest_worker(plane.nc, name="ecohub-ingest-hub")
        ingest_task = asyncio.create_task(worker.run_supervised(), name="ingest")
        stack.push_async_callback(_cancel, ingest_task)
        await _wait_ready(worker.ready, ingest_task)
        services.workers.append(worker)
        services.commands = await stack.enter_async_context(
            CommandService(dbs=services.dbs, devices=services.devices, products=services.products, nc=plane.nc,
                           timeout_s=settings.api.command_timeout_s, bus=services.bus,
                           sweep_s=settings.api.desired_sweep_s))
        stack.callback(setattr, services, "commands", None)
        # automations: subscribes to the bus, runs its scheduler and action runner as named tasks; stopped on exit
        await stack.enter_async_context(AutomationEngine(service=services.automations, bus=services.bus,
                                                         twin=services.twin, commands=lambda: services.commands,
                                                         command_timeout_s=settings.api.command_timeout_s))
        # firmware campaigns: offers on `down`, progress and reconnects from the stream, a periodic tick
        await enter_ota_engine(stack, services, plane)
        maintenance = asyncio.create_task(_maintain(services), name="maintenance")
        stack.push_async_callback(_cancel, maintenance)
        push = asyncio.create_task(services.apps.push.run(  # signed webhooks to apps
            idle_s=settings.push.poll_s, deliver=settings.push.deliver), name="push")
        stack.push_async_callback(_cancel, push)
        notices = asyncio.create_task(services.notifications.run(), name="notifications")  # offline → notified
        stack.push_async_callback(_cancel, notices)
        app = app_factory(services)
        # what is built by now lives as long as the hub: frozen out of the collector's reach, a full collection
        # (set off by requests' garbage) walks only what requests allocate; it took a 30-day chart's p99 from ~80
        # to ~8 ms of CPU (bench/RESULTS.md, telemetry). Unfrozen on exit, so a process running many hubs frees them.
        gc.collect()
        gc.freeze()
        stack.callback(gc.unfreeze)
        server = _QuietServer(uvicorn.Config(app, host=host, port=http_port, log_level="warning", lifespan="off",
                                             access_log=False))
        api_task = asyncio.create_task(server.serve(sockets=[http_socket]), name="api")

        async def stop_api() -> None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(api_task, timeout=5)

        stack.push_async_callback(stop_api)
        while not server.started:
            if api_task.done():
                api_task.result()
                raise Unavailable("the HTTP server stopped during start-up", code=ErrorCode.API_FAILED)
            await asyncio.sleep(0.02)
        mqtt_host, mqtt_port_public = plane.mqtt_endpoint
        services.runtime.http_url = f"http://{host}:{http_port}"
        services.runtime.mqtt_host = settings.mqtt.public_host or mqtt_host
        services.runtime.mqtt_port = mqtt_port_public
        runtime_path = settings.data_dir / RUNTIME_FILE
        runtime_path.write_text(json.dumps({"pid": os.getpid(), "http": services.runtime.http_url,
                                            "mqtt": {"host": services.runtime.mqtt_host, "port": mqtt_port_public},
                                            "nats": plane.urls, "broker": broker}))
        stack.callback(lambda: runtime_path.unlink(missing_ok=True))
        yield services


async def _maintain(services: Services) -> None:
    """The hub's scheduled jobs, each on its own interval: telemetry rollups and retention with the dedup inbox's
    shorter window and the listing gate (listings whose certification or evidence expired leave sale; also once at
    start, for what expired while the hub was down) every `telemetry.job_interval_s`, and the fleet security audit
    with the connect records' retention (`security.audit_interval_s`)."""
    settings = services.settings
    loop = asyncio.get_running_loop()
    await _listing_gate(services)
    jobs = [(settings.telemetry.job_interval_s, _telemetry_job), (settings.telemetry.job_interval_s, _listing_gate),
            (settings.security.audit_interval_s, _security_job), (settings.notify.job_interval_s, _notify_job)]
    due = [loop.time() + every for every, _ in jobs]
    while True:
        await asyncio.sleep(max(0.0, min(due) - loop.time()))
        for i, (every, job) in enumerate(jobs):
            if loop.time() < due[i]:
                continue
            due[i] = loop.time() + every
            try:
                await job(services)
            except Exception:
                log.exception("maintenance job %s failed", job.__name__)


async def _notify_job(services: Services) -> None:
    pruned = await asyncio.to_thread(services.notifications.prune)
    log.info("maintenance: notifications past retention deleted %s", pruned)


async def _telemetry_job(services: Services) -> None:
    settings = services.settings
    report = await asyncio.to_thread(services.telemetry.maintain)
    before = now_ms() - int(settings.ingest.inbox_days * 86_400_000)
    inbox = {c: await asyncio.to_thread(services.devices.prune_inbox, c, before_ms=before) for c in services.dbs.cells}
    log.info("maintenance: telemetry %s; inbox entries forgotten %s", report, inbox)


async def _security_job(services: Services) -> None:
    security = services.security
    await security.recorder.flush()
    before = now_ms() - int(security.settings.connect_log_days * 86_400_000)
    pruned = await asyncio.to_thread(security.service.prune, before_ms=before)
    summary = await asyncio.to_thread(security.service.audit)
    log.info("maintenance: security audit %s; connect records forgotten %d", summary, pruned)


async def _listing_gate(services: Services) -> None:
    """Evidence and reports expire with time, not with an event: the gate is asked again for every listing."""
    try:
        suspended = await asyncio.to_thread(services.ecosystem.listings.reevaluate)
        if suspended:
            log.warning("listing gate: %d listing(s) suspended: %s", len(suspended),
                        ", ".join(f"{x['model']}/{x['market']}" for x in suspended[:10]))
    except Exception:
        log.exception("listing gate evaluation failed")


async def _wait_ready(ready: asyncio.Event, task: asyncio.Task[None]) -> None:
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
    if waiter not in done:
        waiter.cancel()
        raise Unavailable("the ingest worker could not connect to the broker within 15 s", code=ErrorCode.INGEST_FAILED)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the hub owns Ctrl-C and SIGTERM and stops every part in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_until_stopped(services: Services, *, on_ready: Callable[[Services], Awaitable[object]] | None = None,
                              **kwargs: object) -> None:
    """Run a hub until SIGTERM or Ctrl-C; a task `on_ready` returns (the demo's fleet) stops before the hub does, so
    its clients leave while the broker still listens (else they retry against a closed socket)."""
    started: object = None
    async with running_hub(services, **kwargs) as hub:  # type: ignore[arg-type]
        try:
            if on_ready is not None:
                started = await on_ready(hub)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            try:
                await stop.wait()
            finally:
                loop.remove_signal_handler(signal.SIGTERM)
        finally:
            if isinstance(started, asyncio.Task):
                await _cancel(started)
