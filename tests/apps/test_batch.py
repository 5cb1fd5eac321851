"""Batch state: one call pages through the caller's devices with their twins; one call sets several devices."""

from __future__ import annotations

from tests.apps.conftest import World
from tests.home.conftest import bearer


def test_paged_devices_with_twins_for_users_and_apps(world: World) -> None:
    user = world.user["headers"]
    first = world.http.get("/api/v1/me/devices", params={"include": "twin", "limit": 1}, headers=user)
    assert first.status_code == 200 and len(first.json()) == 1
    assert set(first.json()[0]["twin"]) >= {"online", "properties", "version"}
    cursor = first.headers["next-cursor"]
    assert 'rel="next"' in first.headers["link"]
    second = world.http.get("/api/v1/me/devices", params={"include": "twin", "limit": 1, "cursor": cursor},
                            headers=user)
    assert "next-cursor" not in second.headers
    assert sorted(d["did"] for d in first.json() + second.json()) == sorted(world.dids)
    assert world.http.get("/api/v1/me/devices", params={"cursor": "!!"}, headers=user).json()["error"]["code"] \
        == "invalid_cursor"
    # an app sees exactly the granted devices
    world.console_login()
    app = bearer(world.tokens([world.dids[1]])["access_token"])
    r = world.http.get("/api/v1/me/devices", params={"include": "twin"}, headers=app)
    assert [d["did"] for d in r.json()] == [world.dids[1]] and "twin" in r.json()[0]


def test_one_call_sets_several_devices_each_answering_for_itself(world: World) -> None:
    world.console_login()
    app = bearer(world.tokens([world.dids[0]])["access_token"])
    body = {"devices": [{"did": world.dids[0], "values": {"2.1": True}},
                        {"did": world.dids[1], "values": {"2.1": True}},
                        {"did": world.stranger_did, "values": {"2.1": True}}], "timeout_s": 1}
    r = world.http.post("/api/v1/me/devices:set", json=body, headers=app)
    assert r.status_code == 200, r.text
    got = {x["did"]: x for x in r.json()["results"]}
    # granted: the access checks pass and the command reaches the sender (no broker in-process: 503)
    assert got[world.dids[0]]["error"]["code"] == "commands_unavailable"
    assert got[world.dids[1]]["error"]["code"] == "unknown_device"  # not granted to this app
    assert got[world.stranger_did]["status_code"] in (403, 404)
    r = world.http.post("/api/v1/me/devices:set", json={"devices": []}, headers=app)
    assert r.status_code == 422
