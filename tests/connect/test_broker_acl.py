"""The embedded broker authenticates devices by did/secret and enforces the topic ACL of the design."""

from __future__ import annotations

import asyncio
import json

import paho.mqtt.client as paho
import pytest

from ecohub.bootstrap import Services
from ecohub.protocol import Topic
from ecohub.sdk.device import Device, DeviceError
from tests.conftest import load_spec
from tests.helpers import eventually


def _paho_connect(port: int, client_id: str, username: str, password: str) -> int:
    """Connect synchronously and return the CONNACK reason code (0 = accepted)."""
    result: list[int] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
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
    finally:
        client.loop_stop()
        client.disconnect()
