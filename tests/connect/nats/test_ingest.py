"""JetStream ingest: does the MQTT PUBACK wait for the ECOHUB_UP stream? Limits, kill -9, $MQTT_msgs durable."""

from __future__ import annotations

import asyncio
import json
import time

from nats.aio.msg import Msg

from ecohub.connect.nats.ingest import MQTT_MSGS, ensure_consumer, ensure_mqtt_msgs_consumer
from tests.connect.nats.conftest import Hub
from tests.connect.nats.jsutil import (
    STREAM,
    StreamSpec,
    Worker,
    device_of,
    ensure_stream,
    read_ids,
    watch_max_deliveries,
)
from tests.connect.nats.mqttdev import Burst, Device


async def online(hub: Hub, n: int = 1) -> list[Device]:
    """n connected devices."""
    devs = []
    for _ in range(n):
        did, secret = hub.provision()
        d = hub.device(did, secret)
        assert await asyncio.to_thread(d.connect)
        devs.append(d)
    return devs


async def stream_count(hub: Hub, stream: str) -> int:
    """Messages currently in stream."""
    return (await hub.svc.jetstream().stream_info(stream)).state.messages


async def test_burst_then_disconnect_all_in_stream(hub: Hub) -> None:
    await ensure_stream(hub.svc)
    (d,) = await online(hub)
    b = Burst(d)
    t0 = time.monotonic()
    b.send(range(1500))
    assert await asyncio.to_thread(b.wait, 1500)
    rate = 1500 / (time.monotonic() - t0)
    at_last_puback = await stream_count(hub, "ECOHUB_UP")
    await asyncio.to_thread(d.close)
    await asyncio.sleep(0.5)
    ids = await read_ids(hub.svc, "ECOHUB_UP")
    print(f"1500 QoS1: {rate:.0f} msg/s; in stream at last PUBACK: {at_last_puback}; after disconnect: {len(ids)}")
    assert sorted(i for _, i in ids) == list(range(1500))


async def test_puback_is_sent_for_messages_the_stream_refused(hub: Hub) -> None:
    await ensure_stream(hub.svc, StreamSpec(max_msgs=100, discard_new=True))
    (d,) = await online(hub)
    await ensure_mqtt_msgs_consumer(hub.svc)
    b = Burst(d)
    b.send(range(500))
    assert await asyncio.to_thread(b.wait, 500)  # every publish PUBACKed ...
    await asyncio.sleep(0.3)
    kept = await stream_count(hub, "ECOHUB_UP")
    in_mqtt = (await hub.svc.jetstream().consumer_info(MQTT_MSGS, "ingest-mqtt")).num_pending
    print(f"discard-new max_msgs=100: PUBACKed 500, ECOHUB_UP kept {kept}, $MQTT_msgs durable pending {in_mqtt}")
    assert kept == 100  # ... but 400 were refused by the stream, silently
    assert in_mqtt == 500  # the $MQTT_msgs durable has them all
    assert d.connected.is_set()


async def test_mqtt_msgs_durable_shared_by_workers_gets_every_puback(hub: Hub) -> None:
    devs = await online(hub, 3)
    await ensure_mqtt_msgs_consumer(hub.svc, max_ack_pending=2000)
    seen: list[tuple[str, int]] = []

    async def handle(m: Msg) -> None:
        body = json.loads(m.data)
        assert device_of(m.subject) == body["did"]
        seen.append((body["did"], body["id"]))

    workers = [Worker(hub.svc, handle, stream=MQTT_MSGS, durable="ingest-mqtt", batch=200).start() for _ in range(3)]
    bursts = [Burst(d) for d in devs]
    for b in bursts:
        b.send(range(500))
    for b in bursts:
        assert await asyncio.to_thread(b.wait, 500)
    for _ in range(100):
        if len(seen) >= 1500:
            break
        await asyncio.sleep(0.05)
    for w in workers:
        await w.stop()
    assert sorted(seen) == sorted((d.did, i) for d in devs for i in range(500))
    assert [w.processed > 0 for w in workers].count(True) >= 2
    await asyncio.sleep(0.3)
    assert await stream_count(hub, MQTT_MSGS) == 0  # interest retention: acked messages are gone


async def test_max_deliveries_advisory(hub: Hub) -> None:
    await ensure_stream(hub.svc)
    await ensure_consumer(hub.svc, stream=STREAM, durable="ingest", max_deliver=2, ack_wait_s=1)
    advisories: list[dict[str, object]] = []

    async def on_adv(a: dict[str, object]) -> None:
        advisories.append(a)

    await watch_max_deliveries(hub.svc, on_adv)

    async def poison(m: Msg) -> None:
        raise ValueError("poison")

    w = Worker(hub.svc, poison, batch=10).start()
    (d,) = await online(hub)
    assert await asyncio.to_thread(d.publish, f"ecohub/{d.did}/up", b'{"bad":1}', 1)
    for _ in range(80):
        if advisories:
            break
        await asyncio.sleep(0.1)
    await w.stop()
    assert advisories and advisories[0]["stream_seq"] == 1 and advisories[0]["deliveries"] == 2


async def test_retained_state_and_will_reach_the_stream(hub: Hub) -> None:
    await ensure_stream(hub.svc)
    did, secret = hub.provision()
    d = hub.device(did, secret, will=(f"ecohub/{did}/state", json.dumps({"did": did, "id": -1}).encode(), True))
    assert await asyncio.to_thread(d.connect)
    assert await asyncio.to_thread(d.publish, f"ecohub/{did}/state", json.dumps({"did": did, "id": 1}), 1, True)
    await asyncio.to_thread(d.drop)
    await asyncio.sleep(0.5)
    assert await read_ids(hub.svc, "ECOHUB_UP", [f"ecohub.{did}.state"]) == [(did, 1), (did, -1)]


async def test_oversized_publish_closes_the_connection(hub: Hub) -> None:
    (d,) = await online(hub)
    d.client.reconnect_delay_set(30, 30)
    ok = await asyncio.to_thread(d.publish, f"ecohub/{d.did}/up", b"x" * (65 * 1024), 1, False, 3.0)
    assert not ok  # no PUBACK ...
    assert d.disconnected.is_set()  # ... the server closes the connection (maximum payload violation)
    assert "maximum payload exceeded" in hub.server.log_file.read_text()
