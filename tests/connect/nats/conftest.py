"""Fixtures: a real nats-server (JetStream + MQTT + auth callout) on free ports with the Python callout responder."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from ecohub.connect.nats import jwt
from ecohub.connect.nats.callout import CalloutResponder, run_responder
from ecohub.connect.nats.config import CalloutAuth
from ecohub.connect.nats.server import EmbeddedNats
from tests.connect.nats.mqttdev import Device


@dataclass
class Hub:
    """A running server, its auth settings, the responder and a service connection."""

    server: EmbeddedNats
    auth: CalloutAuth
    responder: CalloutResponder
    auth_nc: NATS
    svc: NATS
    devices: dict[str, str] = field(default_factory=dict)
    opened: list[Device] = field(default_factory=list)

    def provision(self, did: str | None = None) -> tuple[str, str]:
        """A new (did, secret) known to the verifier."""
        did = did or f"d_{secrets.token_hex(6)}"
        self.devices[did] = secrets.token_urlsafe(16)
        return did, self.devices[did]

    def device(self, did: str, secret: str, **kw: object) -> Device:
        """An unconnected paho device pointed at the MQTT port (closed at teardown)."""
        d = Device(did, secret, self.server.host, self.server.mqtt_port, **kw)  # type: ignore[arg-type]
        self.opened.append(d)
        return d

    async def service(self) -> NATS:
        """Another service connection (closed by the caller)."""
        return await nats.connect(self.server.url, user=self.auth.service_user, password=self.auth.service_password)

    async def system(self) -> NATS:
        """A system-account connection (closed by the caller)."""
        return await nats.connect(self.server.url, user=self.auth.system_user, password=self.auth.system_password)


def make_auth(**kw: Any) -> tuple[bytes, CalloutAuth]:
    """A fresh issuer seed and the matching CalloutAuth."""
    seed = jwt.new_seed()
    return seed, CalloutAuth(issuer=jwt.public_key(jwt.keypair(seed)), service_password=secrets.token_urlsafe(12),
                             **kw)


@asynccontextmanager
async def running_hub(data_dir: Path, *, auth_timeout_s: float | None = None, **server_kw: Any) -> AsyncIterator[Hub]:
    """One nats-server with the callout responder answering from a dict of device secrets."""
    seed, auth = make_auth(**({} if auth_timeout_s is None else {"timeout_s": auth_timeout_s}))
    devices: dict[str, str] = {}
    responder = CalloutResponder(seed, lambda did, s: devices.get(did) == s)
    server_kw.setdefault("max_payload", 64 * 1024)
    async with EmbeddedNats(data_dir, auth=auth, **server_kw) as server:
        auth_nc = await run_responder(server.url, auth.service_user, auth.service_password, responder)
        svc = await nats.connect(server.url, user=auth.service_user, password=auth.service_password)
        h = Hub(server, auth, responder, auth_nc, svc, devices)
        try:
            yield h
        finally:
            for d in h.opened:
                d.client.loop_stop()
                d.client.disconnect()
            await svc.close()
            await responder.stop()
            await auth_nc.close()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A running single-node hub."""
    async with running_hub(tmp_path / "nats") as h:
        yield h
