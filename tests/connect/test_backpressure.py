"""Back-pressure: with the database locked the worker stops acknowledging (the broker holds the messages),
its in-flight count stays bounded, and everything is stored exactly once when the database returns."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import func, select

from ecohub.bootstrap import Services
from ecohub.connect.models import InboxEntry
from ecohub.connect.mqtt import Endpoint
from ecohub.telemetry.models import Sample
from tests.connect.test_no_loss import Mosquitto, Publisher, mosquitto  # noqa: F401 (fixture)
from tests.helpers import eventually

pytestmark = pytest.mark.mosquitto


def _counts(services: Services) -> tuple[int, int]:
    with services.dbs.cell_session("eu") as s:
        return (int(s.scalar(select(func.count()).select_from(InboxEntry)) or 0),
                int(s.scalar(select(func.count()).select_from(Sample)) or 0))


@pytest.mark.timeout(120)
async def test_locked_database_stops_acks_and_resumes_without_loss(services: Services, plug_model: str,
                                                                   mosquitto: Mosquitto) -> None:  # noqa: F811
    max_inflight = 100
    worker = services.ingest_worker(Endpoint("127.0.0.1", mosquitto.port, 5, services.service_password),
                                    batch_size=50, batch_ms=5, max_inflight=max_inflight, client_id="ecohub-ingest-bp")
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 10)
    device = services.devices.provision(model=plug_model)[0]
    pub = Publisher(device.did, device.secret, mosquitto.port)
    try:
        pub.send(0, 0)
        await eventually(lambda: _counts(services)[0] >= 1)
        # a second connection takes the cell database's write lock: every ingest write now waits, then fails
        # with "database is locked", and is retried without acknowledging
        lock = sqlite3.connect(services.settings.data_dir / "cell-eu.db", timeout=1, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        total = 8000
        for i in range(1, total + 1):
            pub.send(i, i % 1000)
        await asyncio.sleep(3)
        held = worker.stats.unacked
        await asyncio.sleep(2)
        # flat: the worker holds a bounded number of messages (max_inflight plus what one socket read
        # carried) and takes no more while the database is away; the broker keeps the rest queued
        assert worker.stats.unacked == held
        assert held < total // 4, held
        assert _counts(services)[0] == 1  # nothing got through while the database was locked
        assert held > 0  # the worker is holding delivered messages it has not acknowledged
        lock.execute("ROLLBACK")
        lock.close()
        await eventually(lambda: _counts(services)[0] >= total + 1, timeout=60, interval=0.2)
        inbox, samples = _counts(services)
        assert inbox == total + 1 and samples == total + 1  # everything, exactly once
        # catching up, the worker holds max_inflight plus whatever socket reads carried before it paused reading
        # (about 2,000 of these small messages here); without back-pressure it would have held all 8,000
        assert worker.stats.peak_unacked < total // 2, worker.stats.peak_unacked
    finally:
        pub.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
