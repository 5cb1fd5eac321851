"""Revocation on the NATS plane: revoking a device (operator) or unbinding it (owner) drops its live MQTT session
within 2 s, and the old secret is refused from then on (CONNACK 5)."""

from __future__ import annotations

import asyncio
import time

import httpx

from ecohub.bootstrap import Services
from ecohub.protocol import Topic
from tests.connect.nats.mqttdev import Device, raw_connack
from tests.home.conftest import asignup


def _live(hub: Services, did: str, secret: str) -> Device:
    assert hub.runtime.mqtt_port
    dev = Device(did, secret, "127.0.0.1", hub.runtime.mqtt_port)
    dev.client.reconnect_delay_set(0.2, 0.5)  # paho keeps retrying in the background, as firmware does
    return dev


async def _dropped_within(dev: Device, seconds: float) -> float:
    t0 = time.monotonic()
    assert await asyncio.to_thread(dev.disconnected.wait, seconds), f"still connected after {seconds}s"
    return time.monotonic() - t0


async def test_operator_revoke_drops_the_live_session_and_the_old_secret(hub: Services, plug_model: str,
                                                                          api: httpx.AsyncClient) -> None:
    creds, other = hub.devices.provision(model=plug_model, count=2)
    dev, bystander = _live(hub, creds.did, creds.secret), _live(hub, other.did, other.secret)
    try:
        assert await asyncio.to_thread(dev.connect) and await asyncio.to_thread(bystander.connect)
        assert await asyncio.to_thread(dev.publish, Topic.up(dev.did), b'{"id": 1, "method": "properties_changed", '
                                       b'"params": [{"siid": 2, "piid": 1, "value": true}]}')
        r = await api.post(f"/api/v1/devices/{creds.did}/revoke")
        assert r.status_code == 200, r.text
        await _dropped_within(dev, 2.0)
        await asyncio.sleep(1.0)  # its automatic reconnects are refused: it stays off
        assert not dev.connected.is_set()
        assert await asyncio.to_thread(raw_connack, "127.0.0.1", hub.runtime.mqtt_port or 0, creds.did, creds.did,
                                       creds.secret) == 5
        assert bystander.connected.is_set()  # nobody else is dropped
    finally:
        dev.close()
        bystander.close()


async def test_unbinding_drops_the_session_and_only_the_new_secret_connects(hub: Services, plug_model: str,
                                                                             api: httpx.AsyncClient) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    owner = await asignup(api, "owner-unbind@example.org", country="DE")
    home = (await api.post("/api/v1/homes", json={"name": "flat"}, headers=owner["headers"])).json()["home_id"]
    r = await api.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                       headers=owner["headers"])
    assert r.status_code in (200, 201), r.text
    dev = _live(hub, creds.did, creds.secret)
    try:
        assert await asyncio.to_thread(dev.connect)
        r = await api.delete(f"/api/v1/homes/{home}/devices/{creds.did}", headers=owner["headers"])
        assert r.status_code == 200, r.text
        new_secret = r.json()["secret"]
        await _dropped_within(dev, 2.0)
        port = hub.runtime.mqtt_port or 0
        assert await asyncio.to_thread(raw_connack, "127.0.0.1", port, creds.did, creds.did, creds.secret) == 5
        # the device re-provisioned for its next owner connects with the secret the unbinding returned
        assert await asyncio.to_thread(raw_connack, "127.0.0.1", port, creds.did, creds.did, new_secret) == 0
    finally:
        dev.close()
