"""One device shared with another person (member or guest, with expiry), on a real hub with a real MQTT device."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import httpx

from ecohub.bootstrap import Services
from ecohub.sdk.device import Device
from ecohub.store import utcnow
from tests.conftest import load_spec
from tests.helpers import eventually
from tests.home.conftest import PASSWORD, asignup


async def _setup(hub: Services, http: httpx.AsyncClient, model: str) -> tuple[dict[str, str], dict[str, str], str,
                                                                               str, str]:
    """ann owns a home with one claimed plug; bea is another user of the same cell → (ann, bea, home, did, secret)."""
    creds = hub.devices.provision(model=model, cell="eu")[0]
    ann = dict((await asignup(http, "ann@example.org"))["headers"])
    bea = dict((await asignup(http, "bea@example.org"))["headers"])
    home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann)).json()["home_id"]
    r = await http.post(f"/api/v1/homes/{home}/devices", headers=ann,
                        json={"did": creds.did, "bind_code": creds.bind_code, "name": "Lamp"})
    assert r.status_code == 201, r.text
    return ann, bea, home, creds.did, creds.secret


async def test_guest_views_member_switches_a_real_device_and_expiry_ends_it(hub: Services, plug_model: str) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, bea, home, did, secret = await _setup(hub, http, plug_model)
        dev = Device(did=did, secret=secret, spec=load_spec(plug_model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        try:
            dev.report({(2, 1): True})
            await eventually(lambda: "2.1" in hub.twin.get("eu", did)["properties"])
            assert (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).status_code == 404
            assert (await http.get("/api/v1/me/devices", headers=bea)).json() == []

            r = await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann,
                                json={"email": "Bea@Example.org", "role": "guest"})
            assert r.status_code == 201, r.text
            share = r.json()
            assert share["role"] == "guest" and share["expires_at"] is None and share["email"] == "bea@example.org"

            # a guest: sees the device (shared, the owner's name for it, none of the owner's home) and its twin
            listed = (await http.get("/api/v1/me/devices", headers=bea)).json()
            assert [(d["did"], d["shared"], d["role"], d["name"], d["home_id"]) for d in listed] == [
                (did, True, "guest", "Lamp", None)]
            twin = (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).json()
            assert twin["properties"]["2.1"]["value"] is True
            r = await http.post(f"/api/v1/devices/{did}/commands", headers=bea,
                                json={"method": "set_properties", "params": [{"prop": "switch.on", "value": False}]})
            assert r.status_code == 403 and r.json()["error"]["code"] == "share_role", r.text
            r = await http.post(f"/api/v1/me/devices/{did}/properties", json={"values": {"switch.on": False}},
                                headers=bea)
            assert r.status_code == 403
            # the guest sees only their own share, without e-mails, and may not share the device on
            mine = (await http.get(f"/api/v1/me/devices/{did}/shares", headers=bea)).json()
            assert [m["share_id"] for m in mine] == [share["share_id"]] and "email" not in mine[0]
            r = await http.post(f"/api/v1/me/devices/{did}/shares", headers=bea,
                                json={"email": "cid@example.org", "role": "guest"})
            assert r.status_code == 403
            assert (await http.get(f"/api/v1/homes/{home}", headers=bea)).status_code == 404

            # sharing again with the same address makes bea a member: she switches the real device
            later = (utcnow() + timedelta(days=1)).isoformat()
            r = await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann,
                                json={"email": "bea@example.org", "role": "member", "expires_at": later})
            assert r.status_code == 201 and r.json()["share_id"] == share["share_id"] and r.json()["expires_at"]
            r = await http.post(f"/api/v1/me/devices/{did}/properties", json={"values": {"switch.on": False}},
                                headers=bea)
            assert r.status_code == 200 and r.json()["status"] == "replied", r.text
            await eventually(lambda: hub.twin.get("eu", did)["properties"]["2.1"]["value"] is False)
            assert [m for m in dev.received if m.method == "set_properties"]

            # expiry: once passed, the share opens nothing (checked on every request)
            hub.home.homes.expire_share("eu", share["share_id"], utcnow() - timedelta(seconds=1))
            assert (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).status_code == 404
            r = await http.post(f"/api/v1/me/devices/{did}/properties", json={"values": {"switch.on": True}},
                                headers=bea)
            assert r.status_code == 404
            assert (await http.get("/api/v1/me/devices", headers=bea)).json() == []
            owner_view = (await http.get(f"/api/v1/me/devices/{did}/shares", headers=ann)).json()
            assert owner_view[0]["expired"] is True
        finally:
            await dev.disconnect()


async def test_owner_ends_invitee_leaves_and_unbinding_ends_every_share(hub: Services, plug_model: str) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, bea, home, did, _ = await _setup(hub, http, plug_model)
        cid = dict((await asignup(http, "cid@example.org"))["headers"])
        to_bea = (await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann,
                                  json={"email": "bea@example.org", "role": "member"})).json()
        to_cid = (await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann,
                                  json={"email": "cid@example.org", "role": "guest"})).json()
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).status_code == 200
        # nobody else ends a share: not another invitee, not a stranger
        assert (await http.delete(f"/api/v1/me/devices/{did}/shares/{to_bea['share_id']}",
                                  headers=cid)).status_code == 404
        # the owner ends bea's share: 204, and her next request is refused
        r = await http.delete(f"/api/v1/me/devices/{did}/shares/{to_bea['share_id']}", headers=ann)
        assert r.status_code == 204
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).status_code == 404
        assert (await http.get(f"/api/v1/me/devices/{did}", headers=bea)).status_code == 404
        # cid leaves by herself
        assert (await http.get(f"/api/v1/me/devices/{did}", headers=cid)).json()["share_id"] == to_cid["share_id"]
        assert (await http.delete(f"/api/v1/me/devices/{did}/shares/{to_cid['share_id']}",
                                  headers=cid)).status_code == 204
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=cid)).status_code == 404
        assert (await http.get(f"/api/v1/me/devices/{did}/shares", headers=ann)).json() == []

        # unbinding ends the shares: a new binding (even by the same owner) starts without them
        await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann,
                        json={"email": "bea@example.org", "role": "guest"})
        r = await http.delete(f"/api/v1/homes/{home}/devices/{did}", headers=ann)
        assert r.status_code == 200
        r = await http.post(f"/api/v1/homes/{home}/devices", headers=ann,
                            json={"did": did, "bind_code": r.json()["bind_code"]})
        assert r.status_code == 201
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).status_code == 404
        assert (await http.get(f"/api/v1/me/devices/{did}/shares", headers=ann)).json() == []


async def test_refusals_and_a_uniform_answer_for_unknown_addresses(hub: Services, plug_model: str) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, bea, _, did, _ = await _setup(hub, http, plug_model)
        url = f"/api/v1/me/devices/{did}/shares"
        # a device the caller does not own: not revealed
        r = await http.post(url, headers=bea, json={"email": "ann@example.org", "role": "guest"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_device"
        assert (await http.get(url, headers=bea)).status_code == 404
        # to oneself, a bad role, a bad address, an expiry in the past: clear 422s
        r = await http.post(url, headers=ann, json={"email": "ANN@example.org", "role": "guest"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "share_with_self"
        r = await http.post(url, headers=ann, json={"email": "bea@example.org", "role": "owner"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_role"
        r = await http.post(url, headers=ann, json={"email": "not-an-address", "role": "guest"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_email"
        past = (utcnow() - timedelta(hours=1)).isoformat()
        r = await http.post(url, headers=ann, json={"email": "bea@example.org", "role": "guest", "expires_at": past})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_expiry"
        # an address without an account gets the same answer as one with (no enumeration): a pending share
        known = await http.post(url, headers=ann, json={"email": "bea@example.org", "role": "guest"})
        unknown = await http.post(url, headers=ann, json={"email": "dan@example.org", "role": "guest"})
        assert known.status_code == unknown.status_code == 201
        assert set(known.json()) == set(unknown.json())
        # ... which takes effect when dan signs up with that address
        dan = dict((await asignup(http, "dan@example.org"))["headers"])
        listed = (await http.get("/api/v1/me/devices", headers=dan)).json()
        assert [(d["did"], d["role"]) for d in listed] == [(did, "guest")]
        # an unknown share id
        r = await http.delete(f"{url}/nope", headers=ann)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_share"


async def test_export_shows_shares_and_erasure_of_either_person_ends_them(hub: Services, plug_model: str) -> None:
    pw = {"X-Password": PASSWORD}
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, bea, _, did, _ = await _setup(hub, http, plug_model)
        cid = dict((await asignup(http, "cid@example.org"))["headers"])
        for email in ("bea@example.org", "cid@example.org"):
            r = await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann, json={"email": email, "role": "guest"})
            assert r.status_code == 201
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=bea)).status_code == 200

        # the sharer's export: the shares they made, with the addresses they typed; the invitee's: no address
        r = await http.get("/api/v1/privacy/export", headers={**ann, **pw})
        made = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("device_shares.json"))
        assert sorted(s["email"] for s in made) == ["bea@example.org", "cid@example.org"]
        r = await http.get("/api/v1/privacy/export", headers={**bea, **pw})
        got = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("device_shares.json"))
        assert [(s["did"], s["email"]) for s in got] == [(did, "(shared with you)")]
        assert "ann@example.org" not in json.dumps(got).lower()  # nothing of the sharer's address book

        # the invitee's erasure deletes her share; the owner's erasure ends every other
        r = await http.request("DELETE", "/api/v1/privacy/me", headers={**bea, **pw})
        assert r.status_code == 202, r.text
        left = (await http.get(f"/api/v1/me/devices/{did}/shares", headers=ann)).json()
        assert [s["email"] for s in left] == ["cid@example.org"]
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=cid)).status_code == 200
        r = await http.request("DELETE", "/api/v1/privacy/me", headers={**ann, **pw})
        assert r.status_code == 202, r.text
        assert (await http.get(f"/api/v1/devices/{did}/twin", headers=cid)).status_code == 404
        assert (await http.get("/api/v1/me/devices", headers=cid)).json() == []


async def test_a_member_share_lifts_a_home_guest_for_that_one_device(hub: Services, plug_model: str) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, bea, home, did, _ = await _setup(hub, http, plug_model)
        r = await http.post(f"/api/v1/homes/{home}/members", headers=ann,
                            json={"email": "bea@example.org", "role": "guest"})
        assert r.status_code == 201
        body = {"values": {"switch.on": True}, "timeout_s": 0.3}
        r = await http.post(f"/api/v1/me/devices/{did}/properties", json=body, headers=bea)
        assert r.status_code == 403 and r.json()["error"]["code"] == "home_role"
        await http.post(f"/api/v1/me/devices/{did}/shares", headers=ann,
                        json={"email": "bea@example.org", "role": "member"})
        r = await http.post(f"/api/v1/me/devices/{did}/properties", json=body, headers=bea)
        # let through to the device, which never connected in this test: the command times out (not a refusal)
        assert r.status_code == 504 and r.json()["error"]["code"] == "command_timeout", r.text
        # listed once, under the home (the home's view wins in the listing)
        assert [d["did"] for d in (await http.get("/api/v1/me/devices", headers=bea)).json()] == [did]
