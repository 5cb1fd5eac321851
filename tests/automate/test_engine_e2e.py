"""On a real hub: a sensor of one partner switches a plug of another through a rule; history, rate limit, webhook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from ecohub.bootstrap import Services
from ecohub.sdk.device import Device
from tests.automate.conftest import PLUG, SENSOR, Home, Sink
from tests.conftest import load_spec
from tests.helpers import eventually

TEMP = (3, 1001)


def _device(hub: Services, creds: Any, model: str) -> Device:
    return Device(did=creds.did, secret=creds.secret, spec=load_spec(model), host="127.0.0.1",
                  port=hub.runtime.mqtt_port or 0)


async def _runs(http: httpx.AsyncClient, home: Home, rid: str) -> list[dict[str, Any]]:
    r = await http.get(f"/api/v1/automations/{rid}/runs", headers=home.headers)
    assert r.status_code == 200, r.text
    return list(reversed(r.json()))


async def test_sensor_above_threshold_switches_the_plug_on_exactly_on_crossings(
        hub: Services, hub_home: tuple[Home, httpx.AsyncClient], sink: Sink) -> None:
    home, http = hub_home
    doc = {"name": "Too warm: plug on",
           "triggers": [{"type": "property", "did": home.sensor.did, "prop": "temperature", "op": ">", "value": 26}],
           "conditions": {"all": [{"did": home.sensor.did, "prop": "relative-humidity", "op": "<", "value": 90}]},
           "actions": [{"type": "set", "did": home.plug.did, "values": {"switch.on": True}},
                       {"type": "webhook", "url": f"{sink.url}/hook", "body": {"say": "warm"}}]}
    r = await http.post(f"/api/v1/homes/{home.home_id}/automations", json=doc, headers=home.headers)
    assert r.status_code == 201, r.text
    rid = r.json()["rule_id"]
    sensor, plug = _device(hub, home.sensor, SENSOR), _device(hub, home.plug, PLUG)
    await sensor.connect()
    await plug.connect()
    try:
        plug.values[(2, 1)] = False
        for value in (25.0, 27.0, 28.5):  # one crossing
            sensor.report({TEMP: value, (3, 1002): 40})
            await eventually(lambda v=value: _reported(hub, home.sensor.did, "3.1001") == v)
        await eventually(lambda: plug.values.get((2, 1)) is True)
        runs = await eventually(lambda: _runs_when(http, home, rid, 1))
        run = runs[0]
        assert run["outcome"] == "fired" and run["trigger"]["value"] == 27.0 and run["trigger"]["previous"] == 25.0
        assert run["conditions"]["result"] is True and run["conditions"]["all"][0]["actual"] == 40
        assert [a["type"] for a in run["actions"]] == ["set", "webhook"]
        assert run["actions"][0]["status"] == "replied" and run["actions"][1]["status"] == 204
        assert sink.received[0]["json"]["data"] == {"say": "warm"} and sink.received[0]["path"] == "/hook"
        # down and up again: a second crossing; humid air: the trigger matches but the conditions say no
        sensor.report({TEMP: 20.0})
        sensor.report({TEMP: 26.5})
        runs = await eventually(lambda: _runs_when(http, home, rid, 2))
        assert runs[1]["outcome"] == "fired"
        sensor.report({TEMP: 10.0, (3, 1002): 95})
        sensor.report({TEMP: 30.0})
        runs = await eventually(lambda: _runs_when(http, home, rid, 3))
        assert runs[2]["outcome"] == "conditions_false" and runs[2]["actions"] is None
        assert runs[2]["conditions"]["all"][0] == {"did": home.sensor.did, "key": "3.1002", "op": "<", "value": 90,
                                                   "actual": 95, "known": True, "result": False}
        assert len(sink.received) == 2
    finally:
        await sensor.disconnect()
        await plug.disconnect()


def _reported(hub: Services, did: str, key: str) -> Any:
    return (hub.twin.get("eu", did)["properties"].get(key) or {}).get("value")


async def _runs_when(http: httpx.AsyncClient, home: Home, rid: str, n: int) -> list[dict[str, Any]] | None:
    runs = await _runs(http, home, rid)
    return runs if len(runs) >= n else None


async def test_rate_limit_run_now_events_online_and_schedules(
        hub: Services, hub_home: tuple[Home, httpx.AsyncClient], sink: Sink) -> None:
    home, http = hub_home
    doc = {"name": "Notify", "max_runs_per_minute": 3,
           "triggers": [{"type": "event", "did": home.sensor.did, "event": "low-battery"},
                        {"type": "online", "did": home.plug.did, "online": False},
                        {"type": "time", "at": "07:30", "weekdays": [1, 2, 3, 4, 5]}],
           "actions": [{"type": "webhook", "url": f"{sink.url}/n"}]}
    r = await http.post(f"/api/v1/homes/{home.home_id}/automations", json=doc, headers=home.headers)
    assert r.status_code == 201, r.text
    rid = r.json()["rule_id"]
    assert r.json()["triggers"][2] == {"type": "schedule", "cron": "30 7 * * 1,2,3,4,5"}
    engine = hub.automations.engine
    assert engine is not None
    assert engine.tick(datetime(2026, 11, 30, 7, 30, tzinfo=UTC)) == 1  # a Monday at 07:30
    assert engine.tick(datetime(2026, 11, 29, 7, 30, tzinfo=UTC)) == 0  # a Sunday
    sensor, plug = _device(hub, home.sensor, SENSOR), _device(hub, home.plug, PLUG)
    await sensor.connect()
    await plug.connect()
    try:
        await eventually(lambda: hub.twin.get("eu", home.plug.did)["online"])
        await plug.disconnect(graceful=False)  # the will says offline
        await eventually(lambda: _runs_when(http, home, rid, 2))
        sensor.emit_event(2, 1001, {})
        await eventually(lambda: _runs_when(http, home, rid, 3))
        sensor.emit_event(2, 1001, {})
        runs = await eventually(lambda: _runs_when(http, home, rid, 4))
    finally:
        await sensor.disconnect()
    assert [x["outcome"] for x in runs] == ["fired", "fired", "fired", "rate_limited"]
    assert [x["trigger"]["type"] for x in runs] == ["schedule", "online", "event", "event"]
    assert "3 runs per minute" in runs[3]["trigger"]["note"]
    r = await http.post(f"/api/v1/automations/{rid}/run", headers=home.headers)
    assert r.status_code == 200 and r.json()["outcome"] == "rate_limited"
    assert len(sink.received) == 3 and sink.received[1]["json"]["trigger"]["online"] is False
    # disabled rules do not fire
    await http.post(f"/api/v1/automations/{rid}/disable", headers=home.headers)
    assert engine.tick(datetime(2026, 11, 30, 7, 30, tzinfo=UTC)) == 0
    assert engine.snapshot()["rate_limited"] == 2


async def test_run_now_answers_with_the_run(hub: Services, hub_home: tuple[Home, httpx.AsyncClient],
                                            sink: Sink) -> None:
    home, http = hub_home
    doc = {"name": "Hook", "triggers": [{"type": "schedule", "cron": "0 0 1 1 *"}],
           "conditions": {"did": home.sensor.did, "prop": "temperature", "op": ">", "value": 0},
           "actions": [{"type": "webhook", "url": f"{sink.url}/x"},
                       {"type": "set", "did": home.plug.did, "values": {"2.1": True}}]}
    rid = (await http.post(f"/api/v1/homes/{home.home_id}/automations", json=doc, headers=home.headers)).json()
    rid = rid["rule_id"]
    r = await http.post(f"/api/v1/automations/{rid}/run", headers=home.headers)
    assert r.json()["outcome"] == "conditions_false" and r.json()["conditions"]["known"] is False
    assert hub.automations.engine is not None
    hub.automations.engine.runner.command_timeout_s = 0.5
    r = await http.post(f"/api/v1/automations/{rid}/run", json={"skip_conditions": True}, headers=home.headers)
    run = r.json()
    # the plug is offline: the webhook went out, the command timed out; the run says which failed and why
    assert run["outcome"] == "failed" and run["actions"][0]["ok"] is True
    assert run["actions"][1]["ok"] is False and run["actions"][1]["error"] == "command_timeout"
    assert [x["outcome"] for x in await _runs(http, home, rid)] == ["conditions_false", "failed"]
