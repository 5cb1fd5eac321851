"""Ingest looks up a batch's devices off its event loop: a fleet that reports once a minute is never still in the
credential cache (5 s), and a lookup per message on the loop held up everything else the hub's loop carries (the
API, commands, every other device's messages), for as long as the database took to answer."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event

from ecohub.bootstrap import Services
from ecohub.connect import service as device_service
from ecohub.sdk.device import Device
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.helpers import eventually
from tests.migrations import pg_settings

DEVICES = 12


async def _connected(hub: Services, model: str, n: int) -> list[Device]:
    devices = []
    for creds in hub.devices.provision(model=model, count=n):
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        devices.append(dev)
    return devices


def _stored(hub: Services, devices: list[Device], value: int) -> bool:
    cell = hub.devices.cell_of(devices[0].did)
    return all([s["value"] for s in hub.telemetry.series(cell, d.did, "11.1")] == [value] for d in devices)


@pytest.fixture
def long_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every device last connected or reported long ago: nothing is answered from the credential cache."""
    monkeypatch.setattr(device_service, "CRED_CACHE_S", 0.0)


async def test_devices_not_in_memory_are_looked_up_off_the_event_loop(hub: Services, plug_model: str,
                                                                       long_ago: None) -> None:
    devices = await _connected(hub, plug_model, DEVICES)
    loop_thread = threading.get_ident()
    lookups: list[tuple[int, str]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM devices" in statement:
            lookups.append((threading.get_ident(), statement))

    engine = hub.dbs.cell_engines["eu"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for dev in devices:
            dev.report({(11, 1): 7})
        await eventually(lambda: _stored(hub, devices, 7), timeout=20)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        for dev in devices:
            await dev.disconnect()
    assert lookups, "the devices were not looked up at all (the cache was meant to be cold)"
    on_loop = [s for t, s in lookups if t == loop_thread]
    assert not on_loop, f"{len(on_loop)} device lookups ran on the event loop: {on_loop[0][:120]}"
    # a batch's devices are read together: at most one query per batch, never one per message of a batch
    assert len(lookups) <= hub.workers[0].stats.batches + 1
    assert hub.dead_letters.list(cell="eu") == []


def _waiting_on_devices(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND query ILIKE '%%FROM devices%%'").fetchone()
    return bool(row and row[0])


@contextlib.asynccontextmanager
async def _pg_hub(settings: Settings, model: str) -> AsyncIterator[Services]:
    """A running hub (its NATS server, ingest, uvicorn on free ports) on the PostgreSQL databases of `settings`."""
    from ecohub.api.app import create_app
    from ecohub.bootstrap import bootstrap
    from ecohub.hub import free_port, running_hub
    from tests.helpers import DEFINITION

    services = bootstrap(settings)
    try:
        services.products.import_spec(load_spec(model), model=model, actor="test", **DEFINITION)
        async with running_hub(services, app_factory=create_app, http_port=free_port(),
                               mqtt_port=free_port()) as hub:
            yield hub
    finally:
        services.close()


@pytest.fixture
def pg_hub_settings(tmp_path: Path) -> Iterator[Settings]:
    with pg_settings(tmp_path, "ecohub_lookup") as settings:
        yield settings


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_a_locked_devices_table_holds_ingest_but_not_the_api(pg_hub_settings: Settings,
                                                                   plug_model: str, long_ago: None) -> None:
    """While the devices table is locked (a migration, a long transaction), ingest waits for it with the batch held
    and the API keeps answering; once it is free every report is stored as a value, none as a dead letter."""
    async with _pg_hub(pg_hub_settings, plug_model) as hub:
        devices = await _connected(hub, plug_model, DEVICES)
        url = hub.dbs.cell_engines["eu"].url.set(drivername="postgresql").render_as_string(hide_password=False)
        lock = psycopg.connect(url)
        lock.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                lock.rollback()

        # a blocked event loop could not release the lock itself: a timer thread does, whatever happens
        safety = threading.Timer(30, release)
        safety.start()
        try:
            for dev in devices:
                dev.report({(11, 1): 9})
            worker = hub.workers[0]
            # ingest is waiting for the lock (PostgreSQL's own view of its sessions)
            await eventually(lambda: asyncio.to_thread(_waiting_on_devices, url), timeout=20)
            assert hub.runtime.http_url
            async with httpx.AsyncClient(base_url=hub.runtime.http_url, timeout=40) as api:
                r = await api.get("/api/v1/health")
            answered_while_locked = not released.is_set()
            assert r.status_code == 200, r.text
            assert answered_while_locked, "the API did not answer until the devices table was free"
            # the reports are held: no value stored, none dead-lettered
            assert worker.stats.samples == 0 and worker.stats.dead_letters == 0, worker.stats
            await asyncio.to_thread(release)
            await eventually(lambda: _stored(hub, devices, 9), timeout=30)
            assert hub.dead_letters.list(cell="eu") == []
        finally:
            safety.cancel()
            release()
            lock.close()
            for dev in devices:
                await dev.disconnect()


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_a_database_refusing_connections_holds_lookups_and_loses_nothing(pg_hub_settings: Settings,
                                                                               plug_model: str,
                                                                               long_ago: None) -> None:
    """The cell database goes away (it refuses new connections, open ones are cut) while devices report: ingest
    cannot look the devices up, waits with the batch held, and stores every report once the database is back —
    as values, not as dead letters "could not be processed"."""
    async with _pg_hub(pg_hub_settings, plug_model) as hub:
        devices = await _connected(hub, plug_model, DEVICES)
        url = hub.dbs.cell_engines["eu"].url
        name = url.database
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        worker = hub.workers[0]
        await asyncio.to_thread(_allow_connections, admin, name, False)
        try:
            for dev in devices:
                dev.report({(11, 1): 5})
            await eventually(lambda: worker.stats.write_retries >= 1, timeout=30, interval=0.2)
            assert worker.stats.samples == 0 and worker.stats.dead_letters == 0, worker.stats
        finally:
            await asyncio.to_thread(_allow_connections, admin, name, True)
        await eventually(lambda: _stored(hub, devices, 5), timeout=40)
        assert hub.dead_letters.list(cell="eu") == []
        for dev in devices:
            await dev.disconnect()


def _allow_connections(admin_url: str, database: str | None, allow: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}')
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
