"""The production shape: N ingest worker processes on one durable consumer, and API processes, on a NATS cluster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import signal
import time
from contextlib import AsyncExitStack
from typing import Any

import uvicorn

from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.commands import CommandService
from ecohub.connect.plane import parse_nats_urls
from ecohub.hub import AppFactory, _QuietServer, enter_ota_engine, enter_plane, listen
from ecohub.ota.relay import OtaRelay
from ecohub.settings import Settings

log = logging.getLogger(__name__)


def worker_client_id(index: int) -> str:
    """The name a worker's NATS connection shows in the server's connection list."""
    return f"ecohub-ingest-{index}"


async def run_ingest(services: Services, *, broker_url: str, index: int) -> None:
    """Run one ingest worker on the shared durable of a NATS cluster until cancelled."""
    async with AsyncExitStack() as stack:
        # ingest processes answer no callouts and start no server: the API processes and the cluster do that
        plane = await enter_plane(stack, services, broker=broker_url, host="127.0.0.1", mqtt_port=0,
                                  answer_callout=False)
        assert plane.nc is not None
        # what this worker sees of firmware updates goes to the OTA engine's stream (the leading API process reads it)
        await stack.enter_async_context(OtaRelay(bus=services.bus, nc=plane.nc))
        worker = services.ingest_worker(plane.nc, name=worker_client_id(index))
        services.workers.append(worker)
        # what this worker ingests goes to the apps' push outbox in its transaction; this loop queues only the
        # notifications made here: the hub or API processes fan the outbox out and send
        queue = asyncio.create_task(services.apps.push.run(deliver=False), name="push-queue")
        # devices this worker saw go offline become notifications here (stored, and queued for the apps)
        notices = asyncio.create_task(services.notifications.run(), name="notifications")
        try:
            await worker.run_supervised()
        finally:
            queue.cancel()
            notices.cancel()
            # awaited, so they end before the loop closes (not "Task was destroyed but it is pending")
            await asyncio.gather(queue, notices, return_exceptions=True)


def _worker_main(settings_json: dict[str, Any], broker_url: str, index: int) -> None:
    """Entry point of one worker process."""
    logging.basicConfig(level=logging.WARNING, format=f"ingest-{index} %(levelname)s %(message)s")
    services = bootstrap(Settings(**settings_json), migrate=False)
    loop = asyncio.new_event_loop()
    main = loop.create_task(run_ingest(services, broker_url=broker_url, index=index))
    loop.add_signal_handler(signal.SIGTERM, main.cancel)
    loop.add_signal_handler(signal.SIGINT, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(main)
    services.close()


class WorkerPool:
    """Starts N worker processes, restarts any that dies, stops them all on request."""

    def __init__(self, settings: Settings, *, broker_url: str, workers: int) -> None:
        self.settings_json = settings.model_dump(mode="json")
        self.broker_url = broker_url
        self.count = workers
        self.ctx = mp.get_context("spawn")
        self.procs: dict[int, Any] = {}
        self.restarts = 0

    def _start(self, index: int) -> None:
        proc = self.ctx.Process(target=_worker_main, args=(self.settings_json, self.broker_url, index),
                                name=f"ecohub-ingest-{index}", daemon=False)
        proc.start()
        self.procs[index] = proc

    def start(self) -> None:
        """Start every worker."""
        for i in range(self.count):
            self._start(i)

    def supervise_once(self) -> list[int]:
        """Restart dead workers; returns the indexes restarted."""
        restarted = []
        for i, proc in list(self.procs.items()):
            if not proc.is_alive():
                log.warning("ingest worker %d exited with %s; restarting", i, proc.exitcode)
                self._start(i)
                self.restarts += 1
                restarted.append(i)
        return restarted

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker (each flushes its batch) and wait."""
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()


async def serve_api(services: Services, *, app_factory: AppFactory, http_port: int, broker_url: str,
                    host: str = "127.0.0.1") -> None:
    """An API process: HTTP + commands over the external broker; no ingest, no embedded broker."""
    parse_nats_urls(broker_url)  # an API process attaches to an existing cluster; it never starts one
    async with AsyncExitStack() as stack:
        http_socket = listen(host, http_port, what="HTTP", option="--http-port")
        stack.callback(http_socket.close)
        # the API processes answer the cluster's auth callout (a queue group: any of them may take a connect)
        plane = await enter_plane(stack, services, broker=broker_url, host=host, mqtt_port=0)
        assert plane.nc is not None
        commands = await stack.enter_async_context(CommandService(
            dbs=services.dbs, devices=services.devices, products=services.products, nc=plane.nc,
            timeout_s=services.settings.api.command_timeout_s, bus=services.bus,
            sweep_s=services.settings.api.desired_sweep_s))
        services.commands = commands
        services.runtime.http_url = f"http://{host}:{http_port}"
        services.runtime.mqtt_host = services.settings.mqtt.public_host or services.settings.mqtt.host
        services.runtime.mqtt_port = services.settings.mqtt.port
        # firmware campaigns: every API process runs an engine, the one holding the cells' lease acts (docs/deploy.md);
        # campaigns created or resumed here reach it through the stream
        await stack.enter_async_context(OtaRelay(bus=services.bus, nc=plane.nc))
        await enter_ota_engine(stack, services, plane)
        # apps' webhooks: API processes send what the ingest workers queued (claims keep them from doubling up)
        push = asyncio.create_task(services.apps.push.run(idle_s=services.settings.push.poll_s,
                                                          deliver=services.settings.push.deliver), name="push")
        stack.callback(push.cancel)
        server = _QuietServer(uvicorn.Config(app_factory(services), host=host, port=http_port, log_level="warning",
                                             lifespan="off", access_log=False))
        await server.serve(sockets=[http_socket])
