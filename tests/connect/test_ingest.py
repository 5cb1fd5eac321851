"""Devices report through a real broker; ingest validates, stores twin + telemetry, dead-letters bad input."""

from __future__ import annotations

import asyncio
import json
import random

import paho.mqtt.client as paho

from ecohub.bootstrap import Services
from ecohub.protocol import Topic
from ecohub.sdk.device import Device
from ecohub.spec.compiled import random_value
from tests.conftest import load_spec
from tests.helpers import DEFINITION, eventually


async def _device(hub: Services, model: str) -> Device:
    creds = hub.devices.provision(model=model)[0]
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(model), host="127.0.0.1",
                 port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    return dev


async def test_sdk_device_reports_reach_twin_and_telemetry(hub: Services, plug_model: str) -> None:
    dev = await _device(hub, plug_model)
    try:
        dev.report({(2, 1): True})
        dev.report({(2, 1): False, (11, 1): 42})
        cell = hub.devices.cell_of(dev.did)

        def twin() -> dict:
            t = hub.twin.get(cell, dev.did)
            return t if t["properties"].get("11.1", {}).get("value") == 42 else {}

        t = await eventually(twin)
        assert t["properties"]["2.1"]["value"] is False
        assert t["online"] is True
        assert t["version"] >= 2
        series = hub.telemetry.series(cell, dev.did, "2.1")
        assert [s["value"] for s in series] == [True, False]
    finally:
        await dev.disconnect()


async def test_event_is_stored_with_arguments(hub: Services) -> None:
    hub.products.import_spec(load_spec("xiaomi.sensor_ht.new3pr"), model="xiaomi.sensor_ht.new3pr", actor="test",
                             **DEFINITION)
    dev = await _device(hub, "xiaomi.sensor_ht.new3pr")
    try:
        (siid, eiid), ev = next((k, e) for k, e in dev.compiled.events.items() if e.arguments)
        piid = ev.arguments[0]
        value = random_value(dev.compiled.properties[(siid, piid)].prop, random.Random(3))
        dev.emit_event(siid, eiid, {piid: value})
        cell = hub.devices.cell_of(dev.did)
        events = await eventually(lambda: hub.telemetry.events(cell, dev.did))
        assert events[0]["siid"] == siid and events[0]["eiid"] == eiid
        assert events[0]["arguments"] == {f"{siid}.{piid}": value}
    finally:
        await dev.disconnect()


async def test_bad_messages_are_dead_lettered_and_good_values_kept(hub: Services, plug_model: str) -> None:
    dev = await _device(hub, plug_model)
    up = Topic.up(dev.did)
    try:
        dev.publish_raw(up, b"{not json")
        dev.publish_raw(up, b'{"id": "x", "method": "properties_changed", "params": []}')
        dev.publish_raw(up, b'{"id": 5, "method": "reboot", "params": []}')
        # one message: a good value next to an unknown property, a wrong type and an out-of-range value
        dev.publish_raw(up, json.dumps({"id": 6, "method": "properties_changed", "params": [
            {"siid": 2, "piid": 1, "value": True},
            {"siid": 99, "piid": 1, "value": 1},
            {"siid": 11, "piid": 1, "value": "high"},
            {"siid": 11, "piid": 1, "value": 10 ** 9},
        ]}).encode())
        dev.publish_raw(up, json.dumps({"id": 7, "method": "properties_changed",
                                        "params": [{"siid": 2, "piid": 1, "value": "x" * 20000}]}).encode())
        dev.publish_raw(up, b'{"id": 8, "method": "event_occured", "params": {"siid": 2, "eiid": 77, "arguments": []}}')
        dev.publish_raw(Topic.state(dev.did), b'{"online": "yes"}')
        cell = hub.devices.cell_of(dev.did)

        def letters() -> list:
            rows = hub.dead_letters.list(did=dev.did)
            return rows if len(rows) >= 9 else []

        rows = await eventually(letters)
        codes = sorted(r["code"] for r in rows)
        assert codes == sorted(["bad_json", "invalid_message", "unknown_method", "unknown_property", "wrong_type",
                                "out_of_range", "oversized", "unknown_event", "bad_state"])
        reasons = {r["code"]: r["reason"] for r in rows}
        assert "99.1" in reasons["unknown_property"]
        assert "exceeds" in reasons["oversized"]
        assert "params[2]" in reasons["wrong_type"]
        # the good value of message 6 was kept, and the worker still takes messages
        dev.report({(11, 1): 7})
        await eventually(lambda: hub.twin.get(cell, dev.did)["properties"].get("11.1", {}).get("value") == 7)
        assert hub.twin.get(cell, dev.did)["properties"]["2.1"]["value"] is True
    finally:
        await dev.disconnect()


async def test_redelivered_message_is_stored_once(hub: Services, plug_model: str) -> None:
    dev = await _device(hub, plug_model)
    try:
        payload = json.dumps({"id": 1000, "method": "properties_changed",
                              "params": [{"siid": 11, "piid": 1, "value": 3}]}).encode()
        for _ in range(3):
            dev.publish_raw(Topic.up(dev.did), payload)
        dev.report({(11, 1): 4})
        cell = hub.devices.cell_of(dev.did)
        await eventually(lambda: hub.twin.get(cell, dev.did)["properties"].get("11.1", {}).get("value") == 4)
        assert [s["value"] for s in hub.telemetry.series(cell, dev.did, "11.1")] == [3, 4]
        assert hub.workers[0].stats.duplicates >= 2  # type: ignore[attr-defined]
    finally:
        await dev.disconnect()


async def test_plain_paho_client_speaks_the_protocol(hub: Services, plug_model: str) -> None:
    """An outside client (paho-mqtt, not our SDK) proves the wire protocol."""
    creds = hub.devices.provision(model=plug_model)[0]
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=creds.did)
    client.username_pw_set(creds.did, creds.secret)
    client.will_set(Topic.state(creds.did), b'{"online": false}', qos=1, retain=True)
    connected = asyncio.Event()
    loop = asyncio.get_running_loop()
    client.on_connect = lambda c, u, f, rc, p: loop.call_soon_threadsafe(connected.set) if rc == 0 else None
    client.connect("127.0.0.1", hub.runtime.mqtt_port or 0)
    client.loop_start()
    try:
        await asyncio.wait_for(connected.wait(), 10)
        client.publish(Topic.state(creds.did), b'{"online": true}', qos=1, retain=True)
        client.publish(Topic.up(creds.did), json.dumps(
            {"id": 1, "method": "properties_changed", "params": [{"siid": 2, "piid": 1, "value": True}],
             "ts": 1_700_000_000_000}).encode(), qos=1)
        cell = hub.devices.cell_of(creds.did)
        t = await eventually(lambda: hub.twin.get(cell, creds.did)["properties"].get("2.1"))
        assert t == {"value": True, "ts": 1_700_000_000_000}
        assert hub.twin.get(cell, creds.did)["online"] is True
    finally:
        client.loop_stop()
        client.disconnect()


async def test_a_rebooted_device_reusing_ids_updates_the_twin_and_keeps_both_samples(hub: Services,
                                                                                     plug_model: str) -> None:
    """Ids restart at 1 after a reboot: the new message is no duplicate, and the twin shows it at once."""
    creds = hub.devices.provision(model=plug_model)[0]
    spec, port = load_spec(plug_model), hub.runtime.mqtt_port or 0
    cell = hub.devices.cell_of(creds.did)

    def report(msg_id: int, value: int) -> bytes:
        return json.dumps({"id": msg_id, "method": "properties_changed",
                           "params": [{"siid": 11, "piid": 1, "value": value}]}).encode()

    before = Device(did=creds.did, secret=creds.secret, spec=spec, host="127.0.0.1", port=port)
    await before.connect()
    before.publish_raw(Topic.up(creds.did), report(1, 10))
    before.publish_raw(Topic.up(creds.did), report(500, 11))
    await eventually(lambda: hub.twin.get(cell, creds.did)["properties"].get("11.1", {}).get("value") == 11)
    await before.disconnect()
    after = Device(did=creds.did, secret=creds.secret, spec=spec, host="127.0.0.1", port=port)  # rebooted
    await after.connect()
    try:
        after.publish_raw(Topic.up(creds.did), report(1, 12))  # id 1 again, new content
        await eventually(lambda: hub.twin.get(cell, creds.did)["properties"].get("11.1", {}).get("value") == 12)
        assert [s["value"] for s in hub.telemetry.series(cell, creds.did, "11.1")] == [10, 11, 12]
        after.publish_raw(Topic.up(creds.did), report(1, 12))  # and the same message again is a duplicate
        await eventually(lambda: hub.workers[0].stats.duplicates >= 1)
        assert [s["value"] for s in hub.telemetry.series(cell, creds.did, "11.1")] == [10, 11, 12]
    finally:
        await after.disconnect()
