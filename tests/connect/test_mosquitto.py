"""A real Mosquitto 2 with dynamic security, managed by ecohub: device credentials, topic ACL, revocation, ingest."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.mosquitto import MosquittoBroker, _listening, find_dynsec_plugin, find_mosquitto
from ecohub.connect.mqtt import HubClient
from ecohub.hub import free_port, running_hub
from ecohub.sdk.device import Device, DeviceError
from tests.conftest import load_spec
from tests.helpers import eventually

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(find_mosquitto() is None or find_dynsec_plugin() is None,
                       reason="mosquitto or its dynamic-security plugin is not installed"),
]

PASSWORD = "service-password-for-tests"


class PahoDevice:
    """A synchronous MQTT 5 device client (paho) recording connect results, SUBACKs and disconnects."""

    def __init__(self, port: int, did: str, secret: str, *, client_id: str | None = None) -> None:
        self.port = port
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or did,
                                  protocol=paho.MQTTv5)
        self.client.username_pw_set(did, secret)
        self.connack: int | None = None
        self.subacks: dict[int, list[int]] = {}
        self.disconnected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.__setitem__(mid, [r.value for r in rcs])
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()

    def connect(self, timeout: float = 5) -> int:
        """Connect and return the CONNACK reason code (0 = accepted, -1 = none)."""
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while self.connack is None and not self.disconnected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.connack if self.connack is not None else -1

    def subscribe(self, topic: str, timeout: float = 5) -> list[int]:
        """Subscribe (QoS 1) and return the SUBACK reason codes."""
        _, mid = self.client.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout
        while mid not in self.subacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.subacks.get(mid, [])

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the PUBACK."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    def close(self) -> None:
        """Stop the network loop."""
        self.client.disconnect()
        self.client.loop_stop()


def _connect_code(port: int, did: str, secret: str, **kwargs: Any) -> int:
    dev = PahoDevice(port, did, secret, **kwargs)
    try:
        return dev.connect()
    finally:
        dev.close()


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    """A managed Mosquitto with dynamic security on a free port, files in a temp dir."""
    async with MosquittoBroker(host="127.0.0.1", port=free_port(), service_password=PASSWORD,
                               work_dir=tmp_path / "mosquitto", persistence=False) as broker:
        yield broker


async def test_device_client_authenticates_with_its_secret_only(mosquitto: MosquittoBroker) -> None:
    await mosquitto.device_added("eu-00000000000000a1", "right-secret")
    port = mosquitto.port
    assert await asyncio.to_thread(_connect_code, port, "eu-00000000000000a1", "right-secret") == 0
    assert await asyncio.to_thread(_connect_code, port, "eu-00000000000000a1", "wrong-secret") != 0
    assert await asyncio.to_thread(_connect_code, port, "eu-00000000000000ff", "right-secret") != 0
    # the client id must be the did: dynsec pins it
    assert await asyncio.to_thread(_connect_code, port, "eu-00000000000000a1", "right-secret",
                                   client_id="someone-else") != 0
    # no anonymous access, and the dynsec record carries a role but no clear secret
    anon = paho.Client(CallbackAPIVersion.VERSION2, client_id="anon", protocol=paho.MQTTv5)
    codes: list[int] = []
    anon.on_connect = lambda c, u, f, rc, p: codes.append(rc.value)
    anon.connect("127.0.0.1", port)
    for _ in range(100):
        anon.loop(timeout=0.02)
        if codes:
            break
    anon.disconnect()
    assert codes and codes[0] != 0
    client = await mosquitto.get_client("eu-00000000000000a1")
    assert client is not None and client["roles"] == [{"rolename": "ecohub-device-eu-00000000000000a1"}]
    assert mosquitto.process is not None
    assert "right-secret" not in mosquitto.process.dynsec_path.read_text()


async def test_sdk_device_over_mqtt5(mosquitto: MosquittoBroker) -> None:
    did = "eu-00000000000000b1"
    await mosquitto.device_added(did, "sdk-secret")
    spec = load_spec("cuco.plug.v3")
    async with Device(did=did, secret="sdk-secret", spec=spec, port=mosquitto.port, mqtt_version=5):
        pass
    with pytest.raises(DeviceError):
        await Device(did=did, secret="nope", spec=spec, port=mosquitto.port, mqtt_version=5).connect()


async def test_device_cannot_touch_another_devices_topics(mosquitto: MosquittoBroker) -> None:
    a, b = "eu-00000000000000c1", "eu-00000000000000c2"
    await mosquitto.device_added(a, "secret-a")
    await mosquitto.device_added(b, "secret-b")
    seen: list[tuple[str, bytes]] = []

    async def on_message(topic: str, payload: bytes) -> None:
        seen.append((topic, payload))

    async with HubClient(mosquitto.endpoint, client_id="test-service", on_message=on_message) as service:
        service.subscribe("ecohub/#")
        await asyncio.sleep(0.2)
        dev = PahoDevice(mosquitto.port, a, "secret-a")
        assert await asyncio.to_thread(dev.connect) == 0
        try:
            assert await asyncio.to_thread(dev.subscribe, f"ecohub/{a}/down") == [1]
            for topic in (f"ecohub/{b}/down", "ecohub/+/down", "ecohub/#", f"ecohub/{b}/up"):
                codes = await asyncio.to_thread(dev.subscribe, topic)
                assert codes and codes[0] >= 0x80, (topic, codes)
            await asyncio.to_thread(dev.publish, f"ecohub/{b}/up", b'{"id": 1, "forged": true}')
            await asyncio.to_thread(dev.publish, f"ecohub/{b}/state", b'{"online": false}')
            await asyncio.to_thread(dev.publish, f"ecohub/{a}/down", b'{"id": 2}')
            await asyncio.to_thread(dev.publish, f"ecohub/{a}/up", b'{"id": 3}')
            await eventually(lambda: (f"ecohub/{a}/up", b'{"id": 3}') in seen, timeout=5)
            await asyncio.sleep(0.2)
            assert [t for t, _ in seen] == [f"ecohub/{a}/up"], seen
        finally:
            await asyncio.to_thread(dev.close)


async def test_will_outside_own_state_topic_is_not_delivered(mosquitto: MosquittoBroker) -> None:
    # Mosquitto 2.0 accepts the CONNECT and checks the will's ACL when it fires: a forged will never arrives.
    honest, forger, victim = "eu-00000000000000d1", "eu-00000000000000d2", "eu-00000000000000d3"
    await mosquitto.device_added(honest, "secret-h")
    await mosquitto.device_added(forger, "secret-f")
    seen: list[str] = []

    async def on_message(topic: str, payload: bytes) -> None:
        seen.append(topic)

    async with HubClient(mosquitto.endpoint, client_id="test-service", on_message=on_message) as service:
        service.subscribe("ecohub/+/state")
        await asyncio.sleep(0.2)
        for did, secret, will_of in ((forger, "secret-f", victim), (honest, "secret-h", honest)):
            dev = PahoDevice(mosquitto.port, did, secret)
            dev.client.will_set(f"ecohub/{will_of}/state", b'{"online": false}', qos=1)
            assert await asyncio.to_thread(dev.connect) == 0
            dev.client.loop_stop()
            sock = dev.client.socket()
            assert sock is not None
            sock.close()  # an abrupt loss of the connection fires the will
        await eventually(lambda: f"ecohub/{honest}/state" in seen, timeout=5)
        await asyncio.sleep(0.2)
        assert f"ecohub/{victim}/state" not in seen


async def test_removing_a_device_drops_its_session_at_once(mosquitto: MosquittoBroker) -> None:
    did = "eu-00000000000000e1"
    await mosquitto.device_added(did, "secret-e")
    dev = PahoDevice(mosquitto.port, did, "secret-e")
    dev.client.reconnect_delay_set(60, 60)
    assert await asyncio.to_thread(dev.connect) == 0
    try:
        await mosquitto.device_removed(did)
        assert await asyncio.to_thread(dev.disconnected.wait, 2)
    finally:
        await asyncio.to_thread(dev.close)
    assert await asyncio.to_thread(_connect_code, mosquitto.port, did, "secret-e") != 0
    assert await mosquitto.get_client(did) is None
    # re-keying (unbinding) replaces the client: the old secret stops, the new one works
    await mosquitto.device_added(did, "secret-e2")
    await mosquitto.device_added(did, "secret-e3")
    assert await asyncio.to_thread(_connect_code, mosquitto.port, did, "secret-e2") != 0
    assert await asyncio.to_thread(_connect_code, mosquitto.port, did, "secret-e3") == 0


async def test_drop_disconnects_but_keeps_credentials(mosquitto: MosquittoBroker) -> None:
    did = "eu-00000000000000f1"
    await mosquitto.device_added(did, "secret-f")
    dev = PahoDevice(mosquitto.port, did, "secret-f")
    dev.client.reconnect_delay_set(60, 60)
    assert await asyncio.to_thread(dev.connect) == 0
    try:
        await mosquitto.drop(did)
        assert await asyncio.to_thread(dev.disconnected.wait, 2)
    finally:
        await asyncio.to_thread(dev.close)
    assert await asyncio.to_thread(_connect_code, mosquitto.port, did, "secret-f") == 0


async def test_hub_on_managed_mosquitto_end_to_end(services: Services, plug_model: str, operator_token: str) -> None:
    async with running_hub(services, app_factory=create_app,
                           http_port=free_port(), mqtt_port=free_port(), broker="mosquitto") as hub:
        port = hub.runtime.mqtt_port or 0
        async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15,
                                     headers={"Authorization": f"Bearer {operator_token}"}) as api:
            r = await api.post("/api/v1/devices", json={"model": plug_model})
            assert r.status_code in (200, 201), r.text
            creds = r.json()
            assert creds["mqtt"]["port"] == port
            spec = load_spec(plug_model)
            # provisioned through the running hub's API: the broker knows the device at once
            async with Device(did=creds["did"], secret=creds["secret"], spec=spec, port=port,
                              mqtt_version=5) as dev:
                dev.report({(2, 1): True})

                async def twin_on() -> bool:
                    twin = (await api.get(f"/api/v1/devices/{creds['did']}/twin")).json()
                    return bool(twin.get("properties", {}).get("2.1", {}).get("value") is True)

                await eventually(twin_on, timeout=10)
                # in-process provisioning from a worker thread (what sync routes do) blocks until dynsec confirmed
                other = (await asyncio.to_thread(hub.devices.provision, model=plug_model))[0]
                assert await asyncio.to_thread(_connect_code, port, other.did, other.secret) == 0
                # revoking drops the session at once and the device cannot come back
                watcher = PahoDevice(port, other.did, other.secret)
                watcher.client.reconnect_delay_set(60, 60)
                assert await asyncio.to_thread(watcher.connect) == 0
                try:
                    await asyncio.to_thread(hub.devices.revoke, other.did)
                    assert await asyncio.to_thread(watcher.disconnected.wait, 2)
                finally:
                    await asyncio.to_thread(watcher.close)
                assert await asyncio.to_thread(_connect_code, port, other.did, other.secret) != 0
            r = await api.get(f"/api/v1/devices/{creds['did']}/twin")  # served while the broker is Mosquitto
            assert r.status_code == 200 and r.json()["properties"]["2.1"]["value"] is True, r.text


async def test_devices_survive_a_broker_restart(tmp_path: Path) -> None:
    work, port = tmp_path / "mosquitto", free_port()
    async with MosquittoBroker(host="127.0.0.1", port=port, service_password=PASSWORD, work_dir=work) as broker:
        await broker.device_added("eu-0000000000000101", "kept-secret")
    # the dynsec JSON in the work dir is the broker's own store of clients (hashed); a restart keeps them
    async with MosquittoBroker(host="127.0.0.1", port=port, service_password=PASSWORD, work_dir=work) as broker:
        assert await asyncio.to_thread(_connect_code, port, "eu-0000000000000101", "kept-secret") == 0


async def test_external_mosquitto_initialised_with_mosquitto_ctrl(tmp_path: Path) -> None:
    """The setup docs/deploy.md describes: `mosquitto_ctrl dynsec init` with the service user as admin."""
    ctrl, binary, plugin = shutil.which("mosquitto_ctrl"), find_mosquitto(), find_dynsec_plugin()
    if ctrl is None:
        pytest.skip("mosquitto_ctrl is not installed")
    port, dynsec = free_port(), tmp_path / "dynamic-security.json"
    await asyncio.to_thread(subprocess.run, [ctrl, "dynsec", "init", str(dynsec), SERVICE_USER, PASSWORD],
                            check=True, capture_output=True)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\nplugin {plugin}\n"
                    f"plugin_opt_config_file {dynsec}\nuser {getpass.getuser()}\n")
    proc = await asyncio.create_subprocess_exec(str(binary), "-c", str(conf), stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    try:
        await eventually(lambda: _listening("127.0.0.1", port), timeout=5)
        seen: list[str] = []

        async def on_message(topic: str, payload: bytes) -> None:
            seen.append(topic)

        async with MosquittoBroker(host="127.0.0.1", port=port, service_password=PASSWORD, managed=False) as broker:
            did = "eu-0000000000000201"
            await broker.device_added(did, "ext-secret")
            async with HubClient(broker.endpoint, client_id="test-service", on_message=on_message) as service:
                service.subscribe("$share/ingest/ecohub/+/up")
                await asyncio.sleep(0.2)
                dev = PahoDevice(port, did, "ext-secret")
                assert await asyncio.to_thread(dev.connect) == 0
                try:
                    assert await asyncio.to_thread(dev.subscribe, f"ecohub/{did}/down") == [1]
                    await asyncio.to_thread(dev.publish, f"ecohub/{did}/up", b'{"id": 1}')
                    await eventually(lambda: f"ecohub/{did}/up" in seen, timeout=5)
                    await broker.device_removed(did)
                    assert await asyncio.to_thread(dev.disconnected.wait, 2)
                finally:
                    await asyncio.to_thread(dev.close)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=5)


async def test_watch_follows_provisioning_and_revocation_on_the_loop(mosquitto: MosquittoBroker, services: Services,
                                                                      plug_model: str) -> None:
    mosquitto.watch(services.devices, services.bus)
    try:
        creds = services.devices.provision(model=plug_model, count=2)  # on the loop: commands go out at once
        await mosquitto.settle()
        assert not mosquitto.failures
        for c in creds:
            assert await asyncio.to_thread(_connect_code, mosquitto.port, c.did, c.secret) == 0
        services.devices.revoke(creds[0].did)
        await mosquitto.settle()
        assert await asyncio.to_thread(_connect_code, mosquitto.port, creds[0].did, creds[0].secret) != 0
        assert await asyncio.to_thread(_connect_code, mosquitto.port, creds[1].did, creds[1].secret) == 0
    finally:
        mosquitto.unwatch()
    assert mosquitto.credentials_issued not in services.devices.credential_hooks
