"""Fixtures of the browser tests: Debian's chromium through Playwright, a user with a home and live SDK devices."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.sdk.simulator import SimulatedDevice
from tests.conftest import load_spec

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
EMAIL, PASSWORD = "ada@example.org", "correct horse battery"

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests where chromium or playwright is missing (never download a browser)."""
    missing = not CHROMIUM.exists() or shutil.which("chromium") is None
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = True
    for item in items:
        if "tests/console" in str(item.fspath) and missing:
            item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium (apt-get install chromium) "
                                                    "and playwright"))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless chromium (Debian's), one per test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


@dataclass
class Home:
    """A user with a home and two plugs running as SDK devices."""

    principal: Principal
    home_id: str
    devices: list[SimulatedDevice]


@pytest.fixture
async def home(hub: Services, plug_model: str) -> AsyncIterator[Home]:
    """Ada (DE → eu) with a home, a room and two connected plugs claimed with their printed codes."""
    created = hub.home.accounts.signup(email=EMAIL, password=PASSWORD, country="DE")
    p = Principal(Role.USER, created["user_id"], cell=created["cell"])
    home_id = hub.home.homes.create(p, "Flat")["home_id"]
    room = hub.home.homes.add_room(p, home_id, "Living room")["room_id"]
    devices = []
    for i, creds in enumerate(hub.devices.provision(model=plug_model, count=2, cell="eu")):
        hub.home.bindings.claim(p, home_id, did=creds.did, code=creds.bind_code, room_id=room, name=f"Plug {i + 1}")
        dev = SimulatedDevice(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                              port=hub.runtime.mqtt_port or 0, seed=i)
        dev.values[(2, 1)] = False
        await dev.connect()
        dev.report_all()
        devices.append(dev)
    yield Home(p, home_id, devices)
    for dev in devices:
        await dev.disconnect()
