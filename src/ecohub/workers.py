"""The production shape: N ingest worker processes sharing the stream, and API processes, against an external broker."""

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
from ecohub.connect.mqtt import Endpoint
from ecohub.hub import AppFactory, _QuietServer, enter_broker, parse_broker_url
from ecohub.settings import Settings

log = logging.getLogger(__name__)
SHARE_GROUP = "ingest"


def worker_client_id(index: int) -> str:
    """Stable per worker index: a restarted worker resumes its persistent session and gets what it missed."""
    return f"ecohub-ingest-{index}"


async def run_ingest(services: Services, *, broker_url: str, index: int, shared: bool = True) -> None:
    """Run one ingest worker against an MQTT 5 broker until cancelled."""
    host, port = parse_broker_url(broker_url)
    worker = services.ingest_worker(Endpoint(host, port, 5, services.service_password),
                                    client_id=worker_client_id(index), share_group=SHARE_GROUP if shared else None)
    services.workers.append(worker)
    await worker.run()


def _worker_main(settings_json: dict[str, Any], broker_url: str, index: int, shared: bool) -> None:
    """Entry point of one worker process."""
    logging.basicConfig(level=logging.WARNING, format=f"ingest-{index} %(levelname)s %(message)s")
    services = bootstrap(Settings(**settings_json), migrate=False)
    loop = asyncio.new_event_loop()
    main = loop.create_task(run_ingest(services, broker_url=broker_url, index=index, shared=shared))
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
        # One worker holds a plain persistent subscription; several share one ($share/ingest/…).
        shared = self.count > 1
        proc = self.ctx.Process(target=_worker_main, args=(self.settings_json, self.broker_url, index, shared),
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
    parse_broker_url(broker_url)  # an API process attaches to an existing broker; it never starts one
    async with AsyncExitStack() as stack:
        # mosquitto://…: this process also creates the dynsec clients of devices provisioned through it
        endpoint = await enter_broker(stack, services, broker=broker_url, host=host, mqtt_port=0)
        commands = await stack.enter_async_context(CommandService(
            dbs=services.dbs, devices=services.devices, products=services.products, endpoint=endpoint,
            timeout_s=services.settings.api.command_timeout_s, client_id=f"ecohub-api-{http_port}"))
        services.commands = commands
        services.runtime.http_url = f"http://{host}:{http_port}"
        services.runtime.mqtt_host, services.runtime.mqtt_port = endpoint.host, endpoint.port
        server = _QuietServer(uvicorn.Config(app_factory(services), host=host, port=http_port, log_level="warning",
                                             lifespan="off", access_log=False))
        await server.serve()
