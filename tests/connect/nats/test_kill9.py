"""Single node: SIGKILL the server mid-burst; which PUBACKed messages survive in ECOHUB_UP and in $MQTT_msgs?"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from ecohub.connect.nats.ingest import MQTT_FILTERS, MQTT_MSGS, ensure_mqtt_msgs_consumer
from tests.connect.nats.conftest import running_hub
from tests.connect.nats.jsutil import ensure_stream, read_ids
from tests.connect.nats.mqttdev import Burst

pytestmark = pytest.mark.slow  # minutes of load and node kills: run with -m slow


@pytest.mark.parametrize("sync", ["", "always"])
async def test_sigkill_after_puback(tmp_path: Path, sync: str) -> None:
    async with running_hub(tmp_path / "nats", sync_interval=sync) as hub:
        await ensure_stream(hub.svc)
        report = []
        for rnd in range(3):
            did, secret = hub.provision()
            d = hub.device(did, secret)
            assert await asyncio.to_thread(d.connect)
            await ensure_mqtt_msgs_consumer(hub.svc)
            b = Burst(d)
            b.send(range(4000))
            assert await asyncio.to_thread(b.wait, 1500)
            hub.server.kill(signal.SIGKILL)
            acked = b.freeze()
            d.client.loop_stop()  # no resend after restart: only what was PUBACKed before the kill counts
            deadline = time.monotonic() + 15
            while hub.server.restarts <= rnd and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await hub.server.wait_ready()
            await hub.svc.flush(timeout=10)
            in_up = {i for did_, i in await read_ids(hub.svc, "ECOHUB_UP") if did_ == did}
            in_mq = {i for did_, i in await read_ids(hub.svc, MQTT_MSGS, MQTT_FILTERS) if did_ == did}
            report.append((len(acked), len(acked - in_up), len(acked - in_mq), len(in_up - acked)))
        print(
            f"sync_interval={sync or 'default(2m)'}: (PUBACKed, lost in ECOHUB_UP, lost in $MQTT_msgs, "
            f"stored-not-acked) per round: {report}"
        )
        assert all(lost_mq == 0 for _, _, lost_mq, _ in report)  # PUBACK is sent only after the $MQTT_msgs store
