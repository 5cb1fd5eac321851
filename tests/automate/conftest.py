"""Fixtures of the automation tests: a user's home with a sensor and a plug of two partners, and a webhook sink."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from ecohub.connect.service import ProvisionedDevice
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.helpers import DEFINITION, migrated
from tests.home.conftest import asignup, signup

SENSOR, PLUG = "miaomiaoce.sensor_ht.t9", "cuco.plug.v3"


def products(services: Services) -> None:
    """A temperature sensor of one partner and a plug of another (certification: provisionable)."""
    services.products.import_spec(load_spec(SENSOR), model=SENSOR, actor="test", partner_id="miaomiaoce",
                                  **{**DEFINITION, "category": "sensor"})
    services.products.import_spec(load_spec(PLUG), model=PLUG, actor="test", partner_id="cuco", **DEFINITION)


@dataclass
class Home:
    """A home with a bound sensor and plug, and the owner's auth header."""

    home_id: str
    headers: dict[str, str]
    sensor: ProvisionedDevice
    plug: ProvisionedDevice
    extra: dict[str, Any] = field(default_factory=dict)


def make_home(client: Any, services: Services, email: str = "ann@example.org") -> Home:
    """Sign up, create a home, claim a sensor and a plug (sync client: TestClient)."""
    products(services)
    sensor = services.devices.provision(model=SENSOR, cell="eu")[0]
    plug = services.devices.provision(model=PLUG, cell="eu")[0]
    user = signup(client, email)
    home = client.post("/api/v1/homes", json={"name": "Casa"}, headers=user["headers"]).json()["home_id"]
    for d in (sensor, plug):
        r = client.post(f"/api/v1/homes/{home}/devices", json={"did": d.did, "bind_code": d.bind_code},
                        headers=user["headers"])
        assert r.status_code == 201, r.text
    return Home(home, user["headers"], sensor, plug)




@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The automation tests' webhook sink listens on loopback: this hub allows private webhook targets (explicitly;
    the default refuses them, see tests/automate/test_webhook_guard.py)."""
    return Settings(data_dir=migrated(tmp_path), webhooks={"allow_private": True})


@pytest.fixture
def home(client: TestClient, services: Services) -> Home:
    """A home with a sensor and a plug of two partners, without a running hub."""
    return make_home(client, services)


@pytest.fixture
async def hub_home(hub: Services) -> AsyncIterator[tuple[Home, httpx.AsyncClient]]:
    """A home on a real running hub, with an HTTP client of it."""
    products(hub)
    sensor = hub.devices.provision(model=SENSOR, cell="eu")[0]
    plug = hub.devices.provision(model=PLUG, cell="eu")[0]
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        headers = (await asignup(http, "ann@example.org"))["headers"]
        home_id = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=headers)).json()["home_id"]
        for d in (sensor, plug):
            r = await http.post(f"/api/v1/homes/{home_id}/devices", json={"did": d.did, "bind_code": d.bind_code},
                                headers=headers)
            assert r.status_code == 201, r.text
        yield Home(home_id, headers, sensor, plug), http


class Sink:
    """A tiny real HTTP server that keeps what is POSTed to it (a user's webhook endpoint)."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append({"path": self.path, "json": json.loads(body), "agent": self.headers["user-agent"]})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-sink", daemon=True)


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A webhook endpoint on a free port."""
    s = Sink()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()
