"""Fixtures of the privacy tests: a world with a user, a home and a bound device of partner acme that reported."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from ecohub.store import now_ms
from ecohub.twin.service import TwinService
from tests.conftest import load_spec
from tests.helpers import DEFINITION
from tests.home.conftest import bearer, signup


def report(services: Services, did: str, values: dict[str, Any], *, samples: int = 3) -> None:
    """What ingest writes for a device: twin values and a few telemetry samples per key, sealed when bound."""
    cell = did.split("-")[0]
    ts = now_ms()
    with services.dbs.cell_session(cell) as s:
        seals = services.sealer.seals(s, cell, [did])
        TwinService.apply_reports(s, [(did, k, v, ts, ts, ts) for k, v in values.items()], {did: 1}, ts, seals)
        services.telemetry.append(s, [{"did": did, "key": k, "ts": ts + i, "value": v, "msg_id": i}
                                      for k, v in values.items() for i in range(samples)], [], seals)


@pytest.fixture
def world(client: TestClient, services: Services) -> dict[str, Any]:
    """Ann (DE → eu) owns a home with a bound acme plug that reported; tokens for partners acme and other."""
    services.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test",
                                  partner_id="acme", **DEFINITION)
    dev = services.devices.provision(model="acme.plug.v1", cell="eu")[0]
    ann = signup(client, "ann@example.org")
    home = client.post("/api/v1/homes", json={"name": "Home"}, headers=ann["headers"]).json()["home_id"]
    r = client.post(f"/api/v1/homes/{home}/devices", json={"did": dev.did, "bind_code": dev.bind_code},
                    headers=ann["headers"])
    assert r.status_code == 201, r.text
    report(services, dev.did, {"2.1": True, "11.1": 7})
    token = services.tokens.create
    return {"ann": ann, "home": home, "did": dev.did,
            "acme": bearer(str(token(role="partner", partner_id="acme")["token"])),
            "other": bearer(str(token(role="partner", partner_id="other")["token"])),
            "operator": bearer(str(token(role="operator")["token"]))}
