"""No single message stops ingest: each kind of poison ends as a dead letter and every other device keeps reporting."""

from __future__ import annotations

import httpx

from ecohub.bootstrap import Services
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

