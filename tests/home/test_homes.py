"""Homes, rooms and sharing: members control, guests view, revocation and expiry act on the next request."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from ecohub.bootstrap import Services
from ecohub.home.models import HomeMember
from ecohub.store import utcnow
from tests.home.conftest import signup


def test_homes_and_rooms_crud(client: TestClient, services: Services, plug_model: str) -> None:
    ann = signup(client, "ann@example.org")
    h = ann["headers"]
    home = client.post("/api/v1/homes", json={"name": "Flat"}, headers=h).json()["home_id"]
    assert client.post("/api/v1/homes", json={"name": ""}, headers=h).status_code == 422
    room = client.post(f"/api/v1/homes/{home}/rooms", json={"name": "Kitchen"}, headers=h)
    assert room.status_code == 201
    room_id = room.json()["room_id"]
    renamed = client.patch(f"/api/v1/homes/{home}", json={"name": "Flat in Lyon"}, headers=h)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Flat in Lyon"  # PATCH answers the resource
    r = client.patch(f"/api/v1/homes/{home}/rooms/{room_id}", json={"name": "Cuisine"}, headers=h)
    assert (r.status_code, r.json()) == (200, {"room_id": room_id, "name": "Cuisine"})
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    r = client.post(f"/api/v1/homes/{home}/devices", json={"did": dev.did, "bind_code": dev.bind_code,
                                                           "room_id": room_id, "name": "Kettle"}, headers=h)
    assert r.status_code == 201
    got = client.get(f"/api/v1/homes/{home}", headers=h).json()
    assert got["name"] == "Flat in Lyon" and got["role"] == "owner"
    assert got["rooms"] == [{"room_id": room_id, "name": "Cuisine"}]
    assert got["devices"] == [{"did": dev.did, "name": "Kettle", "room_id": room_id}]
    r = client.patch(f"/api/v1/homes/{home}/devices/{dev.did}", json={"room_id": None}, headers=h)
    assert (r.status_code, r.json()) == (200, {"did": dev.did, "name": "Kettle", "room_id": None})
    assert client.get(f"/api/v1/homes/{home}", headers=h).json()["devices"][0]["room_id"] is None
    assert client.delete(f"/api/v1/homes/{home}/rooms/{room_id}", headers=h).status_code == 204
    r = client.patch(f"/api/v1/homes/{home}/rooms/{room_id}", json={"name": "x"}, headers=h)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_room")
    assert [x["home_id"] for x in client.get("/api/v1/homes", headers=h).json()] == [home]


def test_sharing_member_guest_revocation_and_expiry(client: TestClient, services: Services, plug_model: str) -> None:
    ann, mia, gus = (signup(client, f"{n}@example.org") for n in ("ann", "mia", "gus"))
    home = client.post("/api/v1/homes", json={"name": "Flat"}, headers=ann["headers"]).json()["home_id"]
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    client.post(f"/api/v1/homes/{home}/devices", json={"did": dev.did, "bind_code": dev.bind_code},
                headers=ann["headers"])
    share = f"/api/v1/homes/{home}/members"
    assert client.post(share, json={"email": "MIA@example.org", "role": "member"},
                       headers=ann["headers"]).status_code == 201
    r = client.post(share, json={"email": "gus@example.org", "role": "guest", "expires_in_s": 3600},
                    headers=ann["headers"])
    assert r.status_code == 201 and r.json()["expires_at"]
    bad = [({"email": "nobody@example.org", "role": "guest"}, 404, "unknown_user"),
           ({"email": "gus@example.org", "role": "owner"}, 422, "invalid_role"),
           ({"email": "ann@example.org", "role": "guest"}, 422, "share_with_self"),
           ({"email": "gus@example.org", "role": "guest", "expires_in_s": 5}, 422, "invalid_expiry")]
    for body, status, code in bad:
        r = client.post(share, json=body, headers=ann["headers"])
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
    signup(client, "sam@example.org", "SG")
    r = client.post(share, json={"email": "sam@example.org", "role": "guest"}, headers=ann["headers"])
    assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["cell"]) == (403, "wrong_cell", "sg")
    # members may not share, guests may not rename rooms
    r = client.post(share, json={"email": "gus@example.org", "role": "member"}, headers=mia["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "home_role")
    r = client.post(f"/api/v1/homes/{home}/rooms", json={"name": "x"}, headers=gus["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "home_role")
    # both see the device; the guest only views, the member controls (503 here: no broker in TestClient)
    for u, role in [(mia, "member"), (gus, "guest")]:
        devices = client.get("/api/v1/me/devices", headers=u["headers"]).json()
        assert [(d["did"], d["role"]) for d in devices] == [(dev.did, role)]
    cmd = {"method": "set_properties", "params": [{"prop": "switch.on", "value": True}]}
    r = client.post(f"/api/v1/devices/{dev.did}/commands", json=cmd, headers=gus["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "home_role")
    r = client.post(f"/api/v1/me/devices/{dev.did}/properties", json={"values": {"on": True}}, headers=gus["headers"])
    assert r.status_code == 403
    r = client.post(f"/api/v1/devices/{dev.did}/commands", json=cmd, headers=mia["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (503, "commands_unavailable")
    # revocation: the very next request is refused
    assert client.delete(f"{share}/{(mia['user_id'])}", headers=ann["headers"]).status_code == 204
    r = client.get(f"/api/v1/devices/{dev.did}/twin", headers=mia["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_device")
    assert client.get(f"/api/v1/homes/{home}", headers=mia["headers"]).status_code == 404
    # expiry: the guest's time runs out
    assert client.get(f"/api/v1/devices/{dev.did}/twin", headers=gus["headers"]).status_code == 200
    with services.dbs.cell_session("eu") as s:
        s.execute(update(HomeMember).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(f"/api/v1/devices/{dev.did}/twin", headers=gus["headers"]).status_code == 404
    assert client.get("/api/v1/homes", headers=gus["headers"]).json() == []
    # a member leaves by themself
    client.post(share, json={"email": "gus@example.org", "role": "guest"}, headers=ann["headers"])
    assert client.delete(f"{share}/{gus['user_id']}", headers=gus["headers"]).status_code == 204
    members = client.get(share, headers=ann["headers"]).json()
    assert members == [{"user_id": ann["user_id"], "role": "owner", "expires_at": None}]


def test_friendly_names_and_control_by_name(client: TestClient, services: Services, plug_model: str) -> None:
    ann = signup(client, "ann@example.org")
    home = client.post("/api/v1/homes", json={"name": "Flat"}, headers=ann["headers"]).json()["home_id"]
    dev = services.devices.provision(model=plug_model, cell="eu")[0]
    client.post(f"/api/v1/homes/{home}/devices", json={"did": dev.did, "bind_code": dev.bind_code},
                headers=ann["headers"])
    d = client.get(f"/api/v1/me/devices/{dev.did}", headers=ann["headers"]).json()
    props = {p["key"]: p for p in d["properties"]}
    assert props["2.1"]["name"] == "switch.on" and props["2.1"]["description"]
    assert "write" in props["2.1"]["access"]
    assert props["11.2"]["unit"] is not None or props["11.1"]["unit"] is not None
    assert any("values" in p or "range" in p for p in d["properties"])
    # "on" exists in two services: the error lists the choices; unknown names and read-only values are refused
    for values, status, code in [({"on": True}, 422, "ambiguous_property"), ({"nope": 1}, 404, "unknown_property"),
                                 ({"9.9": 1}, 404, "unknown_property")]:
        r = client.post(f"/api/v1/me/devices/{dev.did}/properties", json={"values": values}, headers=ann["headers"])
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), values
    assert "switch.on" in client.post(f"/api/v1/me/devices/{dev.did}/properties", json={"values": {"on": True}},
                                      headers=ann["headers"]).json()["error"]["message"]
