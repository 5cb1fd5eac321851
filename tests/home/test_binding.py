"""Claiming devices: printed and device-issued codes are one-time and short-lived; bound devices; cells; unbinding."""

from __future__ import annotations

import base64
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from ecohub.bootstrap import Services
from ecohub.home.models import BindCode
from ecohub.store import utcnow
from tests.home.conftest import signup


def _basic(did: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{did}:{secret}".encode()).decode()}


def _home(client: TestClient, user: dict, name: str = "Home") -> str:
    r = client.post("/api/v1/homes", json={"name": name}, headers=user["headers"])
    assert r.status_code == 201, r.text
    return str(r.json()["home_id"])


def _claim(client: TestClient, user: dict, home_id: str, did: str, code: str) -> tuple[int, dict]:
    r = client.post(f"/api/v1/homes/{home_id}/devices", json={"did": did, "bind_code": code}, headers=user["headers"])
    return r.status_code, r.json()


def test_printed_code_works_once(client: TestClient, services: Services, plug_model: str) -> None:
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    ann, bob = signup(client, "ann@example.org"), signup(client, "bob@example.org")
    home, bob_home = _home(client, ann), _home(client, bob)
    status, body = _claim(client, ann, home, dev.did, "WRONG123")
    assert (status, body["error"]["code"]) == (422, "invalid_bind_code")
    status, body = _claim(client, ann, home, dev.did, dev.bind_code.lower())  # people type codes in lower case
    assert status == 201 and body["model"] == plug_model
    status, body = _claim(client, ann, home, dev.did, dev.bind_code)
    assert (status, body["error"]["code"]) == (409, "device_already_bound")
    assert "this home" in body["error"]["message"]
    status, body = _claim(client, bob, bob_home, dev.did, dev.bind_code)
    assert (status, body["error"]["code"]) == (409, "device_already_bound")
    assert "another home" in body["error"]["message"]
    # after unbinding, the old printed code is spent: saying so beats "wrong code"
    r = client.delete(f"/api/v1/homes/{home}/devices/{dev.did}", headers=ann["headers"])
    assert r.status_code == 200 and r.json()["secret"] != dev.secret
    status, body = _claim(client, bob, bob_home, dev.did, dev.bind_code)
    assert (status, body["error"]["code"]) == (422, "bind_code_used")
    status, _ = _claim(client, bob, bob_home, dev.did, r.json()["bind_code"])
    assert status == 201


def test_device_issued_code_is_one_time_and_expires(client: TestClient, services: Services, plug_model: str) -> None:
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    ann = signup(client, "ann@example.org")
    home = _home(client, ann)
    url = f"/api/v1/devices/{dev.did}/bind-codes"
    assert client.post(url).status_code == 401
    assert client.post(url, headers=_basic(dev.did, "not-the-secret")).json()["error"]["code"] == \
        "invalid_device_credentials"
    assert client.post(url, headers=ann["headers"]).status_code == 403
    old = client.post(url, headers=_basic(dev.did, dev.secret)).json()
    assert old["expires_in"] > 0
    with services.dbs.cell_session("eu") as s:
        s.execute(update(BindCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    status, body = _claim(client, ann, home, dev.did, old["bind_code"])
    assert (status, body["error"]["code"]) == (422, "bind_code_expired")
    fresh = client.post(url, headers=_basic(dev.did, dev.secret)).json()
    assert _claim(client, ann, home, dev.did, fresh["bind_code"])[0] == 201
    client.delete(f"/api/v1/homes/{home}/devices/{dev.did}", headers=ann["headers"])
    status, body = _claim(client, ann, home, dev.did, fresh["bind_code"])
    assert (status, body["error"]["code"]) == (422, "bind_code_used")
    # the unbind reset the secret: the old one can no longer ask for codes
    assert client.post(url, headers=_basic(dev.did, dev.secret)).status_code == 401


def test_wrong_cell_unknown_and_unowned(client: TestClient, services: Services, plug_model: str) -> None:
    us_dev = services.devices.provision(model=plug_model, cell="us")[0]
    ann, bob = signup(client, "ann@example.org", "FR"), signup(client, "bob@example.org")
    home = _home(client, ann)
    status, body = _claim(client, ann, home, us_dev.did, us_dev.bind_code)
    assert (status, body["error"]["code"], body["error"]["cell"]) == (403, "wrong_cell", "us")
    status, body = _claim(client, ann, home, "eu-0123456789abcdef", "ABCDEFGH")
    assert (status, body["error"]["code"]) == (404, "unknown_device")
    status, body = _claim(client, ann, home, "not-a-did", "ABCDEFGH")
    assert (status, body["error"]["code"]) == (422, "invalid_did")
    eu_dev = services.devices.provision(model=plug_model, cell="eu")[0]
    status, body = _claim(client, bob, home, eu_dev.did, eu_dev.bind_code)  # not bob's home
    assert (status, body["error"]["code"]) == (404, "unknown_home")
    status, body = _claim(client, ann, "0" * 16, eu_dev.did, eu_dev.bind_code)
    assert (status, body["error"]["code"]) == (404, "unknown_home")
    # the failed attempts did not spend the code
    assert _claim(client, ann, home, eu_dev.did, eu_dev.bind_code)[0] == 201
    r = client.get(f"/api/v1/devices/{us_dev.did}/twin", headers=ann["headers"])
    assert (r.status_code, r.json()["error"]["cell"]) == (403, "us")


def test_home_with_devices_cannot_be_deleted(client: TestClient, services: Services, plug_model: str) -> None:
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    ann = signup(client, "ann@example.org")
    home = _home(client, ann)
    _claim(client, ann, home, dev.did, dev.bind_code)
    r = client.delete(f"/api/v1/homes/{home}", headers=ann["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "home_not_empty")
    client.delete(f"/api/v1/homes/{home}/devices/{dev.did}", headers=ann["headers"])
    assert client.delete(f"/api/v1/homes/{home}", headers=ann["headers"]).status_code == 204
    assert client.get(f"/api/v1/homes/{home}", headers=ann["headers"]).status_code == 404


def test_a_new_device_code_replaces_the_previous_one(client: TestClient, services: Services, plug_model: str) -> None:
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    ann = signup(client, "ann@example.org")
    home = _home(client, ann)
    url = f"/api/v1/devices/{dev.did}/bind-codes"
    first = client.post(url, headers=_basic(dev.did, dev.secret)).json()["bind_code"]
    second = client.post(url, headers=_basic(dev.did, dev.secret)).json()["bind_code"]
    status, body = _claim(client, ann, home, dev.did, first)
    assert (status, body["error"]["code"]) == (422, "invalid_bind_code")
    assert _claim(client, ann, home, dev.did, second)[0] == 201
