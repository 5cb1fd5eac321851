"""The embedded broker's JetStream store is bounded: with ingest stalled, devices' QoS 1 reports pile up in
`$MQTT_msgs` only up to `mqtt.broker_store_max`; past it the server refuses the next report (no PUBACK, the
connection closed) instead of filling the disk, and everything it acknowledged is stored once ingest resumes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.nats.ingest import MQTT_MSGS
from ecohub.connect.plane import store_limit
from ecohub.hub import free_port, running_hub
from ecohub.protocol import Topic
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.connect.noloss import assert_exactly_once, report, value_of, wait_all_stored
from tests.helpers import DEFINITION, eventually

BOUND = 64 * 1024  # bytes: a few hundred reports


def publish_until_refused(did: str, secret: str, port: int, *, first: int, most: int,
                          puback_timeout: float = 5.0) -> tuple[set[int], bool]:
    """Reports `first`, `first`+1, … one at a time (QoS 1) until one gets no PUBACK; → (acked ids, whether the
    server closed the connection)."""
    closed = threading.Event()
    connected = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=did, protocol=paho.MQTTv311, clean_session=True)
    c.username_pw_set(did, secret)
    c.on_connect = lambda cl, u, f, rc, p: connected.set() if not rc.is_failure else None
    c.on_disconnect = lambda cl, u, f, rc, p: closed.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    acked: set[int] = set()
    try:
        assert connected.wait(5), "no CONNACK"
        for i in range(first, first + most):
            info = c.publish(Topic.up(did), report(i, value_of(i)), qos=1)
            try:
                info.wait_for_publish(puback_timeout)
            except (RuntimeError, ValueError):  # paho: the connection is gone
                pass
            try:
                published = info.is_published()
            except (RuntimeError, ValueError):
                published = False
            if not published:
                break
            acked.add(i)
        closed.wait(puback_timeout)
        return acked, closed.is_set()
    finally:
        c.loop_stop()
        c.disconnect()


@pytest.fixture
async def bounded_hub(tmp_path: Path) -> AsyncIterator[Services]:
    """A hub whose broker store may hold BOUND bytes."""
    settings = Settings(data_dir=tmp_path / "data", mqtt={"broker_store_max": BOUND})
    services = bootstrap(settings)
    services.products.import_spec(load_spec("cuco.plug.v3"), model="cuco.plug.v3", actor="test", **DEFINITION)
    try:
        async with running_hub(services, app_factory=create_app, http_port=free_port(),
                               mqtt_port=free_port()) as running:
            yield running
    finally:
        services.close()


@pytest.mark.timeout(120)
async def test_full_store_refuses_reports_and_keeps_what_it_acknowledged(bounded_hub: Services) -> None:
    hub = bounded_hub
    assert hub.plane is not None and hub.plane.nc is not None and hub.runtime.mqtt_port
    conf = (hub.settings.data_dir / "nats" / "nats-server.conf").read_text()
    assert f"max_file: {BOUND}" in conf
    device = hub.devices.provision(model="cuco.plug.v3", count=1)[0]
    # ingest stalls: a second connection holds the cell database's write lock, so no batch is committed or acked
    lock = sqlite3.connect(hub.settings.data_dir / "cell-eu.db", timeout=1, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    locked = True
    try:
        acked, closed = await asyncio.to_thread(publish_until_refused, device.did, device.secret,
                                                hub.runtime.mqtt_port, first=1, most=5000)
        # the server refused a report: no PUBACK, and it closed the connection (what a device sees)
        assert 50 < len(acked) < 5000, len(acked)
        assert closed
        info = await hub.plane.nc.jetstream().stream_info(MQTT_MSGS)
        assert info.state.messages >= len(acked) and info.state.bytes <= BOUND
        # still full: a new connection's first report is refused too, and the hub itself is fine
        again, _ = await asyncio.to_thread(publish_until_refused, device.did, device.secret, hub.runtime.mqtt_port,
                                           first=len(acked) + 1, most=1, puback_timeout=3.0)
        assert not again
        assert all(w.alive for w in hub.workers)
        lock.execute("ROLLBACK")
        locked = False
        # ingest resumes: everything acknowledged is stored, once
        rows = await wait_all_stored(hub, {(device.did, i) for i in acked}, timeout=60)
        assert_exactly_once(rows, {(device.did, i) for i in acked})
        await eventually(lambda: _stream_empty(hub), timeout=20, interval=0.2)
        # and the device is accepted again
        later, _ = await asyncio.to_thread(publish_until_refused, device.did, device.secret, hub.runtime.mqtt_port,
                                           first=100_000, most=3)
        assert later == {100_000, 100_001, 100_002}
    finally:
        if locked:
            lock.execute("ROLLBACK")
        lock.close()


async def _stream_empty(hub: Services) -> bool:
    assert hub.plane is not None and hub.plane.nc is not None
    return (await hub.plane.nc.jetstream().stream_info(MQTT_MSGS)).state.messages == 0


def test_default_bound_is_a_share_of_the_disk(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    assert store_limit(store, 12345) == 12345  # a configured bound is taken as it is
    (store / "jetstream").mkdir(parents=True)
    (store / "jetstream" / "blk").write_bytes(b"x" * 4096)
    assert 4096 // 2 < store_limit(store) <= 8 * 1024**3
    assert 0 < store_limit(tmp_path / "not" / "there" / "yet") <= 8 * 1024**3  # measured on the nearest parent
