"""Revocation: KICK a live device session via the system account; expiring callout JWTs as a backstop."""

from __future__ import annotations

import asyncio
import time

from ecohub.connect.nats.revoke import kick, sessions
from tests.connect.nats.conftest import Hub
from tests.connect.nats.mqttdev import raw_connack


async def test_kick_drops_live_session_and_revoked_secret_cannot_reconnect(hub: Hub) -> None:
    did, secret = hub.provision()
    other, other_secret = hub.provision()
    d = hub.device(did, secret)
    o = hub.device(other, other_secret)
    assert await asyncio.to_thread(d.connect) and await asyncio.to_thread(o.connect)
    sysnc = await hub.system()
    try:
        assert len(await sessions(sysnc, did, expected=1)) == 1
        del hub.devices[did]  # revoke the secret first, so paho's automatic reconnect is refused
        t0 = time.monotonic()
        assert await kick(sysnc, did, expected=1) == 1
        assert await asyncio.to_thread(d.disconnected.wait, 5.0)
        elapsed = time.monotonic() - t0
        print(f"kick -> client saw disconnect in {elapsed * 1000:.0f} ms")
        assert elapsed < 2.0
        await asyncio.sleep(1.5)  # paho retries in the background: every retry must be refused
        assert not d.connected.is_set() and d.connack == 135
        assert await asyncio.to_thread(raw_connack, hub.server.host, hub.server.mqtt_port, did, did, secret) == 5
        assert o.connected.is_set()  # the other device is untouched
        assert await sessions(sysnc, did, expected=1) == []
    finally:
        await sysnc.close()


async def test_callout_jwt_expiry_disconnects_session(hub: Hub) -> None:
    hub.responder.session_ttl = 2
    did, secret = hub.provision()
    d = hub.device(did, secret)
    d.client.reconnect_delay_set(5, 5)
    t0 = time.monotonic()
    assert await asyncio.to_thread(d.connect)
    assert await asyncio.to_thread(d.disconnected.wait, 6.0)
    print(f"expiring JWT (ttl 2 s, whole seconds) closed the session after {time.monotonic() - t0:.1f} s")
