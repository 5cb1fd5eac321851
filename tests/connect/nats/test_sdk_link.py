"""The SDK device over a link that fails: between the device and the real broker sits a TCP relay the test cuts.

Two ways a device lost what it said or went quiet for good: QoS 1 reports published just before the link died (no
PUBACK came) were forgotten by the clean-session reconnect, and a link that died again while the device was
subscribing and announcing after a reconnect left it believing it was online, on a dead socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ecohub.certify.probe import impersonate
from ecohub.certify.target import MqttAccess
from ecohub.sdk import device as device_module
from ecohub.sdk.device import Device
from tests.connect.nats.conftest import Hub, running_hub
from tests.connect.nats.test_callout import collect
from tests.helpers import eventually

SPEC = json.loads((Path(__file__).parents[2] / "fixtures" / "specs" / "cuco.plug.v3.json").read_text())
CONNACK_AND_SUBACK = 4 + 5  # MQTT 3.1.1: CONNACK is 4 bytes, the SUBACK of one topic 5


class Relay:
    """A TCP relay to the broker's MQTT port. `hold` keeps what the device sends from the broker (its PUBACKs never
    come); `cut()` kills every open link; `cut_after` forwards that many bytes of the broker's answer on the next
    link, then kills it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.hold = False
        self.cut_after: int | None = None
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _link(self, dev_r: asyncio.StreamReader, dev_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(*self.target)
        self.links.append((dev_w, broker_w))
        budget, self.cut_after = self.cut_after, None

        async def up() -> None:
            while data := await dev_r.read(65536):
                if not self.hold:
                    broker_w.write(data)

        async def down() -> None:
            left = budget
            while data := await broker_r.read(65536 if left is None else left):
                dev_w.write(data)
                if left is not None:
                    left -= len(data)
                    if left <= 0:
                        await dev_w.drain()
                        self._kill(dev_w, broker_w)
                        return

        with contextlib.suppress(Exception):
            await asyncio.gather(up(), down())
        self._kill(dev_w, broker_w)

    @staticmethod
    def _kill(*writers: asyncio.StreamWriter) -> None:
        for w in writers:
            w.transport.abort()

    def cut(self) -> None:
        for pair in self.links:
            self._kill(*pair)
        self.links.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@contextlib.asynccontextmanager
async def device_behind_relay(tmp_path: Path) -> AsyncIterator[tuple[Hub, Relay, Device]]:
    async with running_hub(tmp_path / "nats") as hub:
        relay = Relay(hub.server.host, hub.server.mqtt_port)
        await relay.start()
        did, secret = hub.provision()
        dev = Device(did=did, secret=secret, spec=SPEC, host="127.0.0.1", port=relay.port)
        await dev.connect()
        try:
            yield hub, relay, dev
        finally:
            await dev.disconnect(graceful=False)
            await relay.close()


async def answers_commands(hub: Hub, dev: Device) -> None:
    """The device is really back: a command sent down now is answered up."""
    up = await collect(hub.svc, f"ecohub.{dev.did}.up")

    async def answered() -> bool:
        await hub.svc.publish(f"ecohub.{dev.did}.down", b'{"id":4242,"method":"get_properties","params":[]}')
        await asyncio.sleep(0.3)
        return any(b'"id":4242' in data for _, data in up)

    await eventually(answered, timeout=30, interval=0.2)


async def test_reports_the_broker_never_acknowledged_are_sent_again_after_the_reconnect(tmp_path: Path) -> None:
    async with device_behind_relay(tmp_path) as (hub, relay, dev):
        up = await collect(hub.svc, f"ecohub.{dev.did}.up")
        relay.hold = True  # the link is dying: what the device sends does not arrive, no PUBACK comes back
        sent = [dev.report({(2, 1): i % 2 == 0}) for i in range(5)]
        await asyncio.sleep(0.5)
        assert up == []
        relay.hold = False
        relay.cut()  # and then it is gone: the device reconnects with a clean session
        await eventually(lambda: dev.reconnects == 1, timeout=30)

        def arrived() -> list[int]:
            return [json.loads(data)["id"] for _, data in up]

        await eventually(lambda: set(sent) <= set(arrived()), timeout=10)
        assert [i for i in arrived() if i in sent][:5] == sent  # in the order the device said them
        await answers_commands(hub, dev)


async def test_a_link_that_dies_again_while_the_device_announces_itself_is_reconnected(tmp_path: Path) -> None:
    async with device_behind_relay(tmp_path) as (hub, relay, dev):
        relay.cut_after = CONNACK_AND_SUBACK  # the reconnect gets its CONNACK and SUBACK, then the link dies
        relay.cut()
        await eventually(lambda: dev.reconnects == 1, timeout=60)
        assert dev.connected.is_set()
        await answers_commands(hub, dev)


async def test_a_device_taken_over_and_held_off_by_the_broker_comes_back_on_its_next_try(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NATS holds a client id that was just taken over for a second, then closes it before any CONNACK. gmqtt would
    try that connection again only 6 s later (on a persistent session): the device ends the attempt and retries on
    its own backoff, so it is back while the other client still holds its session."""
    monkeypatch.setattr(device_module, "RECONNECT_FIRST_S", (0.1, 0.2))  # inside the broker's hold-off
    async with device_and_impostor(tmp_path) as (hub, dev, take_over):
        assert (await take_over(5.0))["connected"]
        assert dev.reconnects == 1, "the device was not back while the other client held its session"
        await answers_commands(hub, dev)


@contextlib.asynccontextmanager
async def device_and_impostor(tmp_path: Path) -> AsyncIterator[tuple[Hub, Device, Callable[[float], Awaitable[
        dict[str, Any]]]]]:
    """A connected SDK device, and the certification suite's impersonation of it (its client id and secret, held
    for the given seconds, trying a second unit's topics)."""
    async with running_hub(tmp_path / "nats") as hub:
        did, secret = hub.provision()
        other, _ = hub.provision()
        dev = Device(did=did, secret=secret, spec=SPEC, host=hub.server.host, port=hub.server.mqtt_port)
        await dev.connect()
        endpoint = MqttAccess(host=hub.server.host, port=hub.server.mqtt_port, password="")
        try:
            yield hub, dev, lambda hold_s: impersonate(endpoint, did, secret, other, hold_s=hold_s)
        finally:
            await dev.disconnect(graceful=False)
