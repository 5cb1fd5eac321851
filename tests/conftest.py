"""Stacked fixtures: settings → services → hub (real broker + API on free ports) → api client / devices."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.hub import free_port, running_hub
from ecohub.settings import Settings
from tests.helpers import DEFINITION, migrated

SPECS = Path(__file__).parent / "fixtures" / "specs"


def load_spec(name: str) -> dict[str, Any]:
    """A recorded real miot-spec-v2 instance document."""
    return json.loads((SPECS / f"{name}.json").read_text())


def postgres_reachable() -> bool:
    """True when the PostgreSQL of this machine kind answers on 127.0.0.1:5432."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh temp data dir (SQLite files per plane and cell)."""
    return Settings(data_dir=migrated(tmp_path))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The hub's services on real SQLite files, migrated."""
    svc = bootstrap(settings)
    yield svc
    svc.close()


@pytest.fixture
def plug_model(services: Services) -> str:
    """A real plug spec imported as a product at certification (devices can be provisioned)."""
    services.products.import_spec(load_spec("cuco.plug.v3"), model="cuco.plug.v3", actor="test", **DEFINITION)
    return "cuco.plug.v3"


@pytest.fixture
def operator_token(services: Services) -> str:
    """A bearer token of the operator."""
    return str(services.tokens.create(role="operator", label="tests")["token"])


@pytest.fixture
async def hub(services: Services) -> AsyncIterator[Services]:
    """A real hub in this event loop: its embedded NATS server, ingest worker, commands, uvicorn — on free ports."""
    async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()) as running:
        yield running


@pytest.fixture
async def api(hub: Services, operator_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the running hub, authenticated as operator."""
    assert hub.runtime.http_url
    async with httpx.AsyncClient(base_url=hub.runtime.http_url,
                                 headers={"Authorization": f"Bearer {operator_token}"}, timeout=15) as client:
        yield client


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    """The API app in-process (no broker: commands answer 503 after the access checks)."""
    with TestClient(create_app(services)) as c:
        yield c
