"""Nothing a device saw PUBACKed is lost, nor stored twice: a burst then a clean disconnect, a worker process
killed with SIGKILL, the whole hub killed with SIGKILL (its nats-server child dies with it)."""

from __future__ import annotations

import asyncio

from ecohub.bootstrap import Services
from tests.connect.noloss import KEY, acked_pairs, assert_exactly_once, start_reporters, value_of, wait_all_stored


async def test_burst_then_clean_disconnect_stores_every_acknowledged_report(hub: Services, plug_model: str) -> None:
    """1,500 QoS 1 reports, 1,500 PUBACKs, DISCONNECT: all 1,500 values are in telemetry (amqtt stored 815)."""
    device = hub.devices.provision(model=plug_model)[0]
    assert hub.runtime.mqtt_port
    # 100 in flight, as fast as paho goes; the reporter disconnects cleanly after the last PUBACK
    (reporter,) = start_reporters([device], [hub.runtime.mqtt_port], count=1500, window=100, deadline_s=60)
    await asyncio.to_thread(reporter.join, 70)
    assert len(reporter.acked) == 1500 and not reporter.failovers
    rows = await wait_all_stored(hub, acked_pairs([reporter]), timeout=30)
    assert_exactly_once(rows, acked_pairs([reporter]))
    cell = hub.devices.cell_of(device.did)
    series = hub.telemetry.series(cell, device.did, f"{KEY[0]}.{KEY[1]}", limit=5000)
    assert sorted(s["value"] for s in series) == sorted(value_of(i) for i in range(1, 1501))
