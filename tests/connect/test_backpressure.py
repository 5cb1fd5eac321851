"""Back-pressure on the NATS plane: while the cell database is locked, ingest acknowledges nothing and retries, the
broker keeps what devices sent (the worker holds at most three batches: the one it writes, the next one decoded
behind it and one pull request's worth; never more than the durable's max_ack_pending), and everything is stored
exactly once when the database comes back."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from nats.aio.client import Client as NATS

from ecohub.bootstrap import Services
from tests.connect.noloss import acked_pairs, assert_exactly_once, durable_state, start_reporters, wait_all_stored
from tests.helpers import eventually

TOTAL = 5000


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_locked_database_holds_acks_and_loses_nothing(hub: Services, plug_model: str) -> None:
    worker = hub.workers[0]
    assert hub.plane is not None and hub.plane.nc is not None and hub.runtime.mqtt_port
    nc = hub.plane.nc
    devices = hub.devices.provision(model=plug_model, count=2)
    # a second connection takes the cell database's write lock: every ingest write waits (busy_timeout), fails
    # with "database is locked" and is retried without acknowledging
    lock = sqlite3.connect(hub.settings.data_dir / "cell-eu.db", timeout=1, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    locked = True
    try:
        reporters = start_reporters(devices, [hub.runtime.mqtt_port], count=TOTAL // 2, window=100, deadline_s=60)
        for r in reporters:
            await asyncio.to_thread(r.join, 70)
        acked = acked_pairs(reporters)
        assert len(acked) == TOTAL  # the broker acknowledged every report: it holds them, not the worker
        await eventually(lambda: worker.stats.write_retries >= 1, timeout=40, interval=0.5)
        before, received = await durable_state(nc), worker.stats.received
        await asyncio.sleep(2)
        after = await durable_state(nc)
        # flat: the worker holds what it took (the batch it writes, the next one and one pull request's worth) while
        # it retries and takes no more; the broker keeps the rest
        assert after["num_ack_pending"] == before["num_ack_pending"] and worker.stats.received == received
        assert 0 < after["num_ack_pending"] <= 3 * worker.batch_size <= after["max_ack_pending"], after
        assert after["num_pending"] > 0 and after["num_ack_pending"] + after["num_pending"] == TOTAL, after
        assert worker.stats.stored == 0  # nothing got through while the database was locked
        lock.execute("ROLLBACK")
        locked = False
        rows = await wait_all_stored(hub, acked, timeout=60)
        assert_exactly_once(rows, acked)
        drained = await eventually(lambda: _drained(nc), timeout=10)
        assert drained["num_pending"] == 0
    finally:
        if locked:
            lock.execute("ROLLBACK")
        lock.close()


async def _drained(nc: NATS) -> dict[str, int] | None:
    state = await durable_state(nc)
    return state if state["num_ack_pending"] == 0 and state["num_pending"] == 0 else None
