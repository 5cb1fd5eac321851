"""Fixtures of the telemetry tests: a plug product, its devices, and a writer of samples as ingest writes them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from tests.conftest import load_spec
from tests.helpers import DEFINITION
from tests.home.conftest import signup


def write(services: Services, did: str, key: str, points: Iterable[tuple[int, Any]]) -> None:
    """Append (ts, value) samples of one property in one ingest-like transaction (sealed when bound)."""
    cell = did.split("-")[0]
    rows = [{"did": did, "key": key, "ts": ts, "value": v, "msg_id": i} for i, (ts, v) in enumerate(points)]
    with services.dbs.cell_session(cell) as s:
        services.telemetry.append(s, rows, [], services.sealer.seals(s, cell, [did]))


@pytest.fixture
def device(services: Services) -> Any:
    """A provisioned cuco plug (2.1 on: bool, 2.3 fault: enum, 11.1 consumption: counter, 11.2 power, 5.2 text)."""
    services.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test",
                                  partner_id="acme", **DEFINITION)
    return services.devices.provision(model="acme.plug.v1", cell="eu")[0]


@pytest.fixture
def plug(device: Any) -> str:
    """The plug's did."""
    return str(device.did)


@pytest.fixture
def ann(client: TestClient, device: Any) -> dict[str, Any]:
    """Ann bound the plug into her home: its values are sealed with her key from now on."""
    ann = signup(client, "ann@example.org")
    home = client.post("/api/v1/homes", json={"name": "Home"}, headers=ann["headers"]).json()["home_id"]
    r = client.post(f"/api/v1/homes/{home}/devices", json={"did": device.did, "bind_code": device.bind_code},
                    headers=ann["headers"])
    assert r.status_code == 201, r.text
    return {**ann, "home": home}


@pytest.fixture
def op(services: Services) -> dict[str, str]:
    """The operator's Authorization header."""
    return {"Authorization": f"Bearer {services.tokens.create(role='operator', label='tests')['token']}"}
