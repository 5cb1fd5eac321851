"""No single message stops ingest: each kind of poison ends as a dead letter and every other device keeps reporting."""

from __future__ import annotations

from typing import Any

import httpx
from nats.js.api import AckPolicy, ConsumerConfig

from ecohub.bootstrap import Services
from ecohub.connect.nats.ingest import MQTT_FILTERS, MQTT_MSGS
from ecohub.protocol import Topic
from tests.connect.test_ingest import _device
from tests.helpers import eventually

DEEP = b"[" * 1000 + b"]" * 1000
POISON = [
    # (what, topic kind, payload)
    ("id beyond int64", "up", b'{"id": 9223372036854775808, "method": "properties_changed", '
                              b'"params": [{"siid": 2, "piid": 1, "value": true}]}'),
    ("params nested 1000 deep", "up", b'{"id": 3, "method": "properties_changed", "params": ' + DEEP + b"}"),
    ("value nested 1000 deep", "up", b'{"id": 4, "method": "properties_changed", '
                                     b'"params": [{"siid": 2, "piid": 1, "value": ' + DEEP + b"}]}"),
    ("integer of 400 digits", "up", b'{"id": 5, "method": "properties_changed", '
                                    b'"params": [{"siid": 11, "piid": 2, "value": 1' + b"0" * 400 + b"}]}"),
    ("device time beyond int64", "up", b'{"id": 6, "ts": 99999999999999999999, "method": "properties_changed", '
                                       b'"params": [{"siid": 2, "piid": 1, "value": true}]}'),
    ("state nested 1000 deep", "state", b'{"online": ' + DEEP + b"}"),
]


async def test_poison_messages_end_as_dead_letters_and_ingest_keeps_running(hub: Services, plug_model: str) -> None:
    bad = await _device(hub, plug_model)
    good = await _device(hub, plug_model)
    try:
        for _, kind, payload in POISON:
            bad.publish_raw(Topic.up(bad.did) if kind == "up" else Topic.state(bad.did), payload)
        # the other device, and the poisoning device itself, keep reporting after the poison
        good.report({(11, 1): 11})
        bad.report({(11, 1): 22})
        cell = hub.devices.cell_of(good.did)
        await eventually(lambda: hub.twin.get(cell, good.did)["properties"].get("11.1", {}).get("value") == 11)
        await eventually(lambda: hub.twin.get(cell, bad.did)["properties"].get("11.1", {}).get("value") == 22)
        rows = await eventually(lambda: (r := hub.dead_letters.list(did=bad.did)) and len(r) >= len(POISON) and r)
        assert len(rows) == len(POISON), [(r["code"], r["reason"]) for r in rows]
        reasons = " | ".join(r["reason"] for r in rows)
        assert "9223372036854775807" in reasons  # the id bound is named
        assert reasons.count("nested deeper than 32") + reasons.count("state must be") >= 3
        assert all(r["code"] in ("bad_json", "invalid_message", "out_of_range", "wrong_type", "bad_state")
                   for r in rows), [r["code"] for r in rows]
        # nothing crashed: the worker never restarted and /health is green
        assert hub.workers[0].stats.restarts == 0 and hub.workers[0].alive
        async with httpx.AsyncClient(base_url=hub.runtime.http_url or "") as client:
            health = await client.get("/api/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        await bad.disconnect()
        await good.disconnect()



async def test_a_message_the_broker_gives_up_redelivering_becomes_a_dead_letter(hub: Services,
                                                                                plug_model: str) -> None:
    """A consumer whose workers never get to ack a message: after max_deliver the advisory makes it a dead letter."""
    plane = hub.plane
    assert plane is not None and plane.nc is not None
    js = plane.nc.jetstream()
    durable = "test-gives-up"
    await js.add_consumer(MQTT_MSGS, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                                    max_deliver=1, ack_wait=1.0, filter_subjects=MQTT_FILTERS))
    worker = hub.ingest_worker(plane.nc, durable=durable, name="test-dead-letters")
    watcher = await worker.watch_given_up()
    stuck = await js.pull_subscribe_bind(durable=durable, stream=MQTT_MSGS)
    dev = await _device(hub, plug_model)
    try:
        dev.report({(11, 1): 31})
        taken = await stuck.fetch(1, timeout=10)  # taken by a "worker" that dies before acking it
        assert len(taken) == 1
        rows = await eventually(lambda: [r for r in hub.dead_letters.list(did=dev.did) if r["code"] == "undeliverable"],
                                timeout=15)
        assert "not stored after 1 deliveries" in rows[0]["reason"]
        # and it no longer sits in the broker's stream
        assert await eventually(lambda: _missing(js, taken[0].metadata.sequence.stream), timeout=5)
    finally:
        await dev.disconnect()
        await watcher.unsubscribe()
        await js.delete_consumer(MQTT_MSGS, durable)


async def _missing(js: Any, seq: int) -> bool:
    try:
        await js.get_msg(MQTT_MSGS, seq)
    except Exception:
        return True
    return False
