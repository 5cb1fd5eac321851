"""A partner sees its products' units by id only while no user holds them; a user's device is never its to read or
command (only pseudonymous aggregates and, with consent, the pseudonymous fleet feed)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from tests.conftest import load_spec
from tests.helpers import DEFINITION
from tests.home.conftest import bearer, signup


def test_a_bound_device_disappears_from_its_partner_and_comes_back_when_unbound(client: TestClient,
                                                                              services: Services) -> None:
    services.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test",
                                  partner_id="acme", **DEFINITION)
    unit, sold = services.devices.provision(model="acme.plug.v1", count=2)
    acme = bearer(str(services.tokens.create(role="partner", partner_id="acme")["token"]))
    operator = bearer(str(services.tokens.create(role="operator")["token"]))
    ann = signup(client, "ann@example.org")["headers"]
    home = client.post("/api/v1/homes", json={"name": "Home"}, headers=ann).json()["home_id"]
    assert client.post(f"/api/v1/homes/{home}/devices", json={"did": sold.did, "bind_code": sold.bind_code},
                       headers=ann).status_code == 201

    listed = [d["did"] for d in client.get("/api/v1/devices", headers=acme).json()]
    assert listed == [unit.did]  # its test unit, not the user's device
    for path in (f"/api/v1/devices/{sold.did}", f"/api/v1/devices/{sold.did}/twin",
                 f"/api/v1/devices/{sold.did}/telemetry?key=2.1", f"/api/v1/devices/{sold.did}/events"):
        r = client.get(path, headers=acme)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_device", path
    r = client.post(f"/api/v1/devices/{sold.did}/commands", headers=acme,
                    json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": False}]})
    assert r.status_code == 404  # no command to a user's plug, whatever the broker says
    # its own unbound unit it may still read (the command needs a broker: 503 here, after the access check)
    assert client.get(f"/api/v1/devices/{unit.did}/twin", headers=acme).status_code == 200
    r = client.post(f"/api/v1/devices/{unit.did}/commands", headers=acme,
                    json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}]})
    assert r.status_code == 503
    # the operator sees both; once the user unbinds, the device is the partner's again
    assert {d["did"] for d in client.get("/api/v1/devices", headers=operator).json()} == {unit.did, sold.did}
    assert client.delete(f"/api/v1/homes/{home}/devices/{sold.did}", headers=ann).status_code == 200
    assert {d["did"] for d in client.get("/api/v1/devices", headers=acme).json()} == {unit.did, sold.did}
