"""Apps with automations:write: rules only on granted devices, only their own rules visible, and the rules stop
when the user withdraws the app's access."""

from __future__ import annotations

from typing import Any

from tests.apps.conftest import REDIRECT, World
from tests.home.conftest import bearer


def _rule(did: str, target: str) -> dict[str, Any]:
    return {"name": "lock when on", "triggers": [{"type": "property", "did": did, "prop": "2.1"}],
            "actions": [{"type": "set", "did": target, "values": {"7.1": True}}]}


def test_app_automations_follow_the_grant(world: World) -> None:
    r = world.http.post("/api/v1/apps", headers=world.operator, json={
        "name": "Automator", "redirect_uris": [REDIRECT], "scopes": ["devices:read", "automations:write"]})
    world.app = r.json()
    world.console_login()
    home = world.http.get("/api/v1/homes", headers=world.user["headers"]).json()[0]["home_id"]
    # the user's own rule on both devices: the app must not see it
    mine = world.http.post(f"/api/v1/homes/{home}/automations", headers=world.user["headers"],
                           json=_rule(world.dids[0], world.dids[1]))
    assert mine.status_code == 201, mine.text
    reader = bearer(world.tokens([world.dids[0]], scope="devices:read")["access_token"])
    r = world.http.post(f"/api/v1/homes/{home}/automations", headers=reader, json=_rule(world.dids[0], world.dids[0]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    app = bearer(world.tokens([world.dids[0]], scope="devices:read automations:write")["access_token"])
    r = world.http.post(f"/api/v1/homes/{home}/automations", headers=app, json=_rule(world.dids[0], world.dids[1]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "device_not_in_home"  # not granted
    r = world.http.post(f"/api/v1/homes/{home}/automations", headers=app, json=_rule(world.dids[0], world.dids[0]))
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["created_by"].startswith("grant:")
    listed = world.http.get(f"/api/v1/homes/{home}/automations", headers=app).json()
    assert [x["rule_id"] for x in listed] == [rule["rule_id"]]
    assert world.http.get(f"/api/v1/automations/{mine.json()['rule_id']}", headers=app).status_code == 404
    # the user sees both; withdrawing the app's access stops the app's rule, not theirs
    assert len(world.http.get(f"/api/v1/homes/{home}/automations", headers=world.user["headers"]).json()) == 2
    grant = world.http.get("/api/v1/me/apps", headers=world.user["headers"]).json()[0]["grant_id"]
    assert world.http.delete(f"/api/v1/me/apps/{grant}", headers=world.user["headers"]).status_code == 204
    rules = {x["rule_id"]: x for x in world.http.get(f"/api/v1/homes/{home}/automations",
                                                     headers=world.user["headers"]).json()}
    assert rules[rule["rule_id"]]["enabled"] is False
    assert rules[rule["rule_id"]]["disabled_reason"] == "the app's access was withdrawn"
    assert rules[mine.json()["rule_id"]]["enabled"] is True
