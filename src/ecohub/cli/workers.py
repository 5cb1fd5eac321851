"""CLI commands of the production shape: `ecohub ingest --workers N` and `ecohub api`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

import typer

from ecohub.api.app import create_app
from ecohub.bootstrap import bootstrap
from ecohub.cli.common import DatabaseOpt, DataDir, console, handle_errors, make_settings
from ecohub.workers import WorkerPool, serve_api


def register(app: typer.Typer) -> None:
    """Attach `ingest` and `api`."""
    app.command("ingest")(ingest)
    app.command("api")(api)


@handle_errors
def ingest(broker: str = typer.Option(..., "--broker", help="nats://host:port[,host:port…] of the cell's NATS cluster"),
           workers: int = typer.Option(2, "--workers", min=1, max=64),
           data_dir: Path | None = DataDir, database: str | None = DatabaseOpt) -> None:
    """Run N ingest worker processes sharing the cluster's durable consumer of device messages."""
    logging.basicConfig(level=logging.WARNING)
    settings = make_settings(data_dir, database=database, create=True)  # a server command, like `up`
    bootstrap(settings).close()  # migrate once before the workers start
    pool = WorkerPool(settings, broker_url=broker, workers=workers)
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pool.start()
    console.print(f"{workers} ingest workers on {broker} (one durable consumer); Ctrl-C stops")
    while not stopping:
        time.sleep(0.5)
        pool.supervise_once()
    pool.stop()
    console.print(f"stopped ({pool.restarts} restarts)")


@handle_errors
def api(broker: str = typer.Option(..., "--broker", help="nats://host:port[,host:port…] of the cell's NATS cluster"),
        http_port: int = typer.Option(8080, "--http-port"), host: str = typer.Option("127.0.0.1", "--host"),
        data_dir: Path | None = DataDir, database: str | None = DatabaseOpt) -> None:
    """Run an API process (HTTP, commands, the devices' auth callout) on a NATS cluster; ingest runs separately."""
    logging.basicConfig(level=logging.WARNING)
    services = bootstrap(make_settings(data_dir, database=database, create=True))
    console.print(f"ecohub API on http://{host}:{http_port}/api/v1/docs, commands via {broker}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_api(services, app_factory=create_app, http_port=http_port, broker_url=broker, host=host))
