"""The embedded broker authenticates devices by did/secret and enforces the topic ACL of the design."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest

from ecohub.bootstrap import Services
from ecohub.connect.domain import SERVICE_USER
from ecohub.protocol import Topic
from ecohub.sdk.device import Device, DeviceError
from tests.conftest import load_spec
from tests.helpers import eventually


def _paho_connect(port: int, client_id: str, username: str, password: str, *, clean: bool = True) -> int:
    """Connect synchronously and return the CONNACK reason code (0 = accepted, -1 = no answer)."""
    result: list[int] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc, p: result.append(rc.value)
    try:
        client.connect("127.0.0.1", port)
    except OSError:
        return -1
    for _ in range(100):
        client.loop(timeout=0.05)
        if result:
            break
    client.disconnect()
    return result[0] if result else -1


@pytest.mark.parametrize("case", ["wrong_secret", "unknown_did", "client_id_mismatch"])
async def test_bad_credentials_are_refused(hub: Services, plug_model: str, case: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    did, secret, client_id = creds.did, creds.secret, creds.did
    if case == "wrong_secret":
        secret = "not-the-secret"
    elif case == "unknown_did":
        did = client_id = "eu-00000000deadbeef"
    else:
        client_id = "someone-else"
    rc = await asyncio.to_thread(_paho_connect, hub.runtime.mqtt_port or 0, client_id, did, secret)
    assert rc != 0
    ok = await asyncio.to_thread(_paho_connect, hub.runtime.mqtt_port or 0, creds.did, creds.did, creds.secret)
    assert ok == 0


async def test_sdk_device_with_wrong_secret_cannot_connect(hub: Services, plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    dev = Device(did=creds.did, secret="wrong", spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0)
    with pytest.raises(DeviceError):
        await dev.connect()


async def test_device_cannot_publish_for_another_device(hub: Services, plug_model: str) -> None:
    a, b = hub.devices.provision(model=plug_model, count=2)
    spec = load_spec(plug_model)
    dev_a = Device(did=a.did, secret=a.secret, spec=spec, port=hub.runtime.mqtt_port or 0)
    await dev_a.connect()
    try:
        forged = {"id": 1, "method": "properties_changed", "params": [{"siid": 2, "piid": 1, "value": True}]}
        dev_a.publish_raw(Topic.up(b.did), json.dumps(forged).encode())
        dev_a.publish_raw(Topic.state(b.did), b'{"online": true}', retain=True)
        dev_a.report({(2, 1): False})  # its own message, sent after the forged ones
        cell = hub.devices.cell_of(a.did)
        await eventually(lambda: hub.twin.get(cell, a.did)["properties"].get("2.1"))
        twin_b = hub.twin.get(cell, b.did)
        assert twin_b["properties"] == {} and twin_b["online"] is False
    finally:
        await dev_a.disconnect()


async def test_device_cannot_subscribe_to_another_devices_commands(hub: Services, plug_model: str) -> None:
    a, b = hub.devices.provision(model=plug_model, count=2)
    granted: list[list[int]] = []
    got: list[bytes] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=a.did)
    client.username_pw_set(a.did, a.secret)
    client.on_subscribe = lambda c, u, mid, rcs, p: granted.append([rc.value for rc in rcs])
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.connect("127.0.0.1", hub.runtime.mqtt_port or 0)
    client.loop_start()
    try:
        client.subscribe([(Topic.down(b.did), 1), ("ecohub/#", 1), (Topic.down(a.did), 1)])
        await eventually(lambda: granted)
        assert granted[0][0] >= 0x80 and granted[0][1] >= 0x80  # refused
        assert granted[0][2] < 0x80  # its own down topic is allowed
        # the hub sends a command to each: only a's own arrives (refused subscriptions deliver nothing)
        service = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ecohub-test-sender")
        service.username_pw_set(SERVICE_USER, hub.service_password)
        service.connect("127.0.0.1", hub.runtime.mqtt_port or 0)
        service.loop_start()
        try:
            for did in (b.did, a.did):
                service.publish(Topic.down(did), f'{{"id": 1, "method": "get_properties", "to": "{did}"}}', qos=1)
            await eventually(lambda: got)
            await asyncio.sleep(0.3)
        finally:
            service.loop_stop()
            service.disconnect()
        assert [json.loads(m)["to"] for m in got] == [a.did]
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.parametrize("clean", [True, False], ids=["clean-session", "persistent-session"])
async def test_wrong_password_with_a_live_did_does_not_cut_the_device_off(api: httpx.AsyncClient, hub: Services,
                                                                          plug_model: str, clean: bool) -> None:
    """amqtt 0.12 deleted (clean) or took over (persistent) the live session before refusing the password."""
    creds = hub.devices.provision(model=plug_model)[0]
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    try:
        cell = hub.devices.cell_of(creds.did)
        await eventually(lambda: hub.twin.get(cell, creds.did)["online"])
        # a live device's client id and username with a wrong password
        rc = await asyncio.to_thread(_paho_connect, hub.runtime.mqtt_port or 0, creds.did, creds.did, "not-the-secret",
                                     clean=clean)
        assert rc not in (0, -1)  # refused with a CONNACK code
        assert dev.connected.is_set()
        r = await api.post(f"/api/v1/devices/{creds.did}/commands",
                           json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True}],
                                 "timeout_s": 3})
        assert r.status_code == 200, r.text
        assert r.json()["result"] == [{"siid": 2, "piid": 1, "code": 0}]
        assert dev.values[(2, 1)] is True
        assert dev.connected.is_set()
    finally:
        await dev.disconnect()


async def test_broadcast_survives_subscriptions_changing_meanwhile(hub: Services, plug_model: str) -> None:
    """Devices connecting and leaving while reports flow: every report of the steady device reaches the twin."""
    steady, *churn = hub.devices.provision(model=plug_model, count=16)
    spec = load_spec(plug_model)
    port = hub.runtime.mqtt_port or 0
    dev = Device(did=steady.did, secret=steady.secret, spec=spec, port=port)
    await dev.connect()

    async def come_and_go(creds: Any) -> None:
        for _ in range(6):
            other = Device(did=creds.did, secret=creds.secret, spec=spec, port=port)
            await other.connect()
            await asyncio.sleep(0.02)
            await other.disconnect(graceful=False)

    try:
        cell = hub.devices.cell_of(steady.did)
        churning = asyncio.gather(*[come_and_go(c) for c in churn])
        ids = []
        for i in range(150):
            ids.append(dev.report({(2, 1): i % 2 == 0}))
            await asyncio.sleep(0.002)
        await churning
        # 90 connects through the auth callout meanwhile: give a loaded machine time, the count must still be exact
        await eventually(lambda: len(hub.telemetry.series(cell, steady.did, "2.1")) >= len(ids), timeout=30)
        assert len(hub.telemetry.series(cell, steady.did, "2.1")) == len(ids)
    finally:
        await dev.disconnect()


async def test_unsubscribe_then_subscribe_ends_subscribed(api: httpx.AsyncClient, hub: Services,
                                                          plug_model: str) -> None:
    """UNSUBSCRIBE x and SUBSCRIBE x arriving together: amqtt 0.12 handled the SUBSCRIBE first, ending unsubscribed."""
    creds = hub.devices.provision(model=plug_model)[0]
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    try:
        acked: list[int] = []
        assert dev._client is not None
        dev._client.on_subscribe = lambda *_: acked.append(1)
        for _ in range(3):
            dev._client.unsubscribe(Topic.down(creds.did))
            dev._client.subscribe(Topic.down(creds.did), qos=1)
        await eventually(lambda: len(acked) >= 3, timeout=3)
        r = await api.post(f"/api/v1/devices/{creds.did}/commands",
                           json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}], "timeout_s": 3})
        assert r.status_code == 200, r.text
    finally:
        await dev.disconnect()


async def test_a_connecting_device_gets_no_other_devices_retained_state(hub: Services, plug_model: str) -> None:
    """amqtt 0.12 sent every connecting client the retained messages of every filter anyone (the ingest) subscribed."""
    a, b = hub.devices.provision(model=plug_model, count=2)
    dev_a = Device(did=a.did, secret=a.secret, spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0)
    await dev_a.connect()
    try:
        cell = hub.devices.cell_of(a.did)
        await eventually(lambda: hub.twin.get(cell, a.did)["online"])  # A's online state is retained and ingested
        got: list[str] = []
        connected: list[int] = []
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=b.did)
        client.username_pw_set(b.did, b.secret)
        client.on_connect = lambda c, u, f, rc, p: connected.append(rc.value)
        client.on_message = lambda c, u, m: got.append(m.topic)
        client.connect("127.0.0.1", hub.runtime.mqtt_port or 0)
        client.loop_start()
        try:
            await eventually(lambda: connected == [0])
            client.subscribe(Topic.down(b.did), qos=1)
            client.publish(Topic.state(b.did), b'{"online":true}', qos=1, retain=True)
            await eventually(lambda: hub.twin.get(cell, b.did)["online"])
            assert Topic.state(a.did) not in got, got
        finally:
            client.loop_stop()
            client.disconnect()
    finally:
        await dev_a.disconnect()
