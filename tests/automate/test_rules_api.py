"""Saving automations through the user API: what is refused (with a reason), loops, roles, and the stored shape."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from tests.automate.conftest import Home, make_home
from tests.home.conftest import signup


def rule(home: Home, **over: Any) -> dict[str, Any]:
    """When the sensor's temperature goes above 26 °C, switch the plug on."""
    doc: dict[str, Any] = {
        "name": "Too warm: plug on",
        "triggers": [{"type": "property", "did": home.sensor.did, "prop": "temperature", "op": ">", "value": 26}],
        "actions": [{"type": "set", "did": home.plug.did, "values": {"switch.on": True}}],
    }
    return {**doc, **over}


def post(client: TestClient, home: Home, doc: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/homes/{home.home_id}/automations", json=doc, headers=home.headers)


def test_a_rule_across_two_partners_is_saved_with_canonical_keys(client: TestClient, home: Home) -> None:
    r = post(client, home, rule(home, conditions={"any": [{"time": {"after": "22:00", "before": "06:00"}},
                                                          {"did": home.plug.did, "prop": "2.1", "op": "==",
                                                           "value": False}]}))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enabled"] is True and body["triggers"][0]["prop"] == "3.1001"
    assert body["actions"][0]["values"] == {"2.1": True}
    listed = client.get(f"/api/v1/homes/{home.home_id}/automations", headers=home.headers).json()
    assert [x["rule_id"] for x in listed] == [body["rule_id"]]
    assert client.get(f"/api/v1/automations/{body['rule_id']}/runs", headers=home.headers).json() == []


def test_bad_rules_are_refused_with_a_reason(client: TestClient, services: Services, home: Home) -> None:
    s, p = home.sensor.did, home.plug.did
    cases = {
        "unknown_property": rule(home, triggers=[{"type": "property", "did": s, "prop": "pressure", "op": ">",
                                                  "value": 1}]),
        "out_of_range": rule(home, triggers=[{"type": "property", "did": s, "prop": "temperature", "op": ">",
                                              "value": 500}]),
        "property_not_writable": rule(home, actions=[{"type": "set", "did": s, "values": {"temperature": 20}}]),
        "wrong_type": rule(home, actions=[{"type": "set", "did": p, "values": {"switch.on": "yes"}}]),
        "device_not_in_home": rule(home, actions=[{"type": "set", "did": "eu-0000000000000000",
                                                   "values": {"2.1": True}}]),
        "unknown_action": rule(home, actions=[{"type": "action", "did": p, "action": "explode"}]),
        "unknown_rule": rule(home, actions=[{"type": "run_rule", "rule_id": "nope"}]),
    }
    for code, doc in cases.items():
        r = post(client, home, doc)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (code, r.text)
        assert r.json()["error"]["message"]
    r = post(client, home, rule(home, triggers=[{"type": "schedule", "cron": "61 * * * *"}]))
    assert r.status_code == 422 and "cron" in r.json()["error"]["message"]
    r = post(client, home, rule(home, actions=[{"type": "webhook", "url": "file:///etc/passwd"}]))
    assert r.status_code == 422 and r.json()["error"]["path"] == "actions[0].url"
    # a device of the same user but another home is not this home's
    other = client.post("/api/v1/homes", json={"name": "Office"}, headers=home.headers).json()["home_id"]
    r = client.post(f"/api/v1/homes/{other}/automations", json=rule(home), headers=home.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "device_not_in_home"


def test_loops_are_refused_at_save_time(client: TestClient, home: Home) -> None:
    p = home.plug.did
    # a rule that switches the plug off whenever it is switched off cannot fire itself; one that toggles it can
    ok = rule(home, triggers=[{"type": "property", "did": p, "prop": "switch.on", "op": "==", "value": True}],
              actions=[{"type": "set", "did": p, "values": {"switch.on": False}}])
    assert post(client, home, ok).status_code == 201
    selfish = rule(home, triggers=[{"type": "property", "did": p, "prop": "indicator-light.on"}],
                   actions=[{"type": "set", "did": p, "values": {"indicator-light.on": True}}])
    r = post(client, home, selfish)
    assert r.status_code == 409 and r.json()["error"]["code"] == "rule_loop"
    # a chain: A (light changes → lock) and B (lock changes → light) close a loop only when B is saved
    a = post(client, home, rule(home, name="A", triggers=[{"type": "property", "did": p, "prop": "13.1"}],
                                actions=[{"type": "set", "did": p, "values": {"7.1": True}}]))
    assert a.status_code == 201
    b = post(client, home, rule(home, name="B", triggers=[{"type": "property", "did": p, "prop": "7.1"}],
                                actions=[{"type": "set", "did": p, "values": {"13.1": True}}]))
    assert b.status_code == 409 and "A" in b.json()["error"]["message"]
    # run_rule edges count too: C runs A, and changing A to run C closes the loop
    c = post(client, home, rule(home, name="C", actions=[{"type": "run_rule", "rule_id": a.json()["rule_id"]}]))
    assert c.status_code == 201
    a_doc = rule(home, name="A", actions=[{"type": "run_rule", "rule_id": c.json()["rule_id"]}])
    r = client.put(f"/api/v1/automations/{a.json()['rule_id']}", json=a_doc, headers=home.headers)
    assert r.status_code == 409 and r.json()["error"]["cycle"][0] == a.json()["rule_id"]


def test_members_edit_guests_read_and_strangers_see_nothing(client: TestClient, services: Services,
                                                             home: Home) -> None:
    rid = post(client, home, rule(home)).json()["rule_id"]
    guest, stranger = signup(client, "guest@example.org"), signup(client, "eve@example.org")
    client.post(f"/api/v1/homes/{home.home_id}/members", json={"email": "guest@example.org", "role": "guest"},
                headers=home.headers)
    assert client.get(f"/api/v1/automations/{rid}", headers=guest["headers"]).status_code == 200
    assert client.get(f"/api/v1/automations/{rid}/runs", headers=guest["headers"]).status_code == 200
    assert client.post(f"/api/v1/automations/{rid}/disable", headers=guest["headers"]).status_code == 403
    assert post(client, Home(home.home_id, guest["headers"], home.sensor, home.plug), rule(home)).status_code == 403
    for method, url in (("GET", f"/api/v1/automations/{rid}"), ("GET", f"/api/v1/automations/{rid}/runs"),
                        ("POST", f"/api/v1/automations/{rid}/run"), ("DELETE", f"/api/v1/automations/{rid}"),
                        ("GET", f"/api/v1/homes/{home.home_id}/automations")):
        assert client.request(method, url, headers=stranger["headers"]).status_code == 404, (method, url)
        assert client.request(method, url).status_code == 401
    assert client.post(f"/api/v1/automations/{rid}/disable", headers=home.headers).json()["enabled"] is False
    assert client.delete(f"/api/v1/automations/{rid}", headers=home.headers).status_code == 204
    assert client.get(f"/api/v1/automations/{rid}", headers=home.headers).status_code == 404


def test_unbinding_a_device_stops_its_rules(client: TestClient, services: Services, home: Home) -> None:
    rid = post(client, home, rule(home)).json()["rule_id"]
    assert client.delete(f"/api/v1/homes/{home.home_id}/devices/{home.plug.did}",
                         headers=home.headers).status_code == 200
    got = client.get(f"/api/v1/automations/{rid}", headers=home.headers).json()
    assert got["enabled"] is False and home.plug.did in got["disabled_reason"]
    r = client.post(f"/api/v1/automations/{rid}/enable", headers=home.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "device_not_in_home"


def test_other_users_homes_cannot_be_targeted(client: TestClient, services: Services, home: Home) -> None:
    bob = make_home(client, services, "bob@example.org")
    r = post(client, bob, rule(home))  # Bob names Ann's devices in his own home
    assert r.status_code == 422 and r.json()["error"]["code"] == "device_not_in_home"
