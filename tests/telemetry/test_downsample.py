"""Downsampled reads: one point per bucket, step lines for switches, consumption per bucket, reasons for bad input."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from ecohub.api.console.common import COOKIE
from ecohub.bootstrap import Services
from ecohub.store import now_ms
from tests.home.conftest import signup
from tests.telemetry.conftest import write

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a whole day
MIN = 60_000
URL = "/api/v1/devices/{did}/telemetry"


def get(client: TestClient, did: str, headers: dict[str, str], **params: Any) -> Any:
    return client.get(URL.format(did=did), params=params, headers=headers)


def test_power_averaged_per_5_minutes(client: TestClient, services: Services, plug: str, op: dict[str, str]) -> None:
    write(services, plug, "11.2", [(T0 + i * MIN, float(i)) for i in range(60)])  # one reading a minute for an hour
    r = get(client, plug, op, key="11.2", since=T0, until=T0 + 60 * MIN - 1, bucket="5m", agg="avg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket_ms"] == 5 * MIN and body["kind"] == "number" and body["source"] == "raw"
    assert [p["ts"] for p in body["points"]] == [T0 + i * 5 * MIN for i in range(12)]
    assert [p["value"] for p in body["points"]] == [i * 5 + 2.0 for i in range(12)]
    assert {p["count"] for p in body["points"]} == {5}
    mx = get(client, plug, op, key="11.2", since=T0, until=T0 + 60 * MIN - 1, bucket="1h", agg="max").json()
    mn = get(client, plug, op, key="11.2", since=T0, until=T0 + 60 * MIN - 1, bucket="1h", agg="min").json()
    assert mx["points"] == [{"ts": T0, "value": 59.0, "count": 60}] and mn["points"][0]["value"] == 0.0


def test_points_picks_the_bucket_for_a_30_day_chart(client: TestClient, services: Services, plug: str,
                                                    op: dict[str, str]) -> None:
    day = 24 * 60 * MIN
    write(services, plug, "11.2", [(T0 + i * 15 * MIN, 100.0) for i in range(30 * 96)])  # 30 days, every 15 min
    r = get(client, plug, op, key="11.2", since=T0, until=T0 + 30 * day - 1, points=500)
    body = r.json()
    assert r.status_code == 200, r.text
    assert body["bucket"] == "3h" and 200 <= len(body["points"]) <= 500  # 240 points of 3 hours
    assert body["agg"] == "avg" and all(p["value"] == 100.0 for p in body["points"])


def test_a_switch_is_a_step_line_of_state_changes(client: TestClient, services: Services, plug: str,
                                                  op: dict[str, str]) -> None:
    # on at 00:00, reported again at 00:10, off at 00:25, on at 00:50
    write(services, plug, "2.1", [(T0, True), (T0 + 10 * MIN, True), (T0 + 25 * MIN, False), (T0 + 50 * MIN, True)])
    body = get(client, plug, op, key="2.1", since=T0, until=T0 + 60 * MIN - 1, bucket="15m").json()
    assert body["kind"] == "state" and body["agg"] == "last"
    assert [(p["ts"], p["value"]) for p in body["points"]] == [(T0, True), (T0 + 15 * MIN, False),
                                                                (T0 + 45 * MIN, True)]
    assert body["runs"] == [{"since": T0, "until": T0 + 25 * MIN, "value": True},
                            {"since": T0 + 25 * MIN, "until": T0 + 50 * MIN, "value": False},
                            {"since": T0 + 50 * MIN, "until": T0 + 60 * MIN - 1, "value": True}]
    # a later window starts in the state the switch was left in
    later = get(client, plug, op, key="2.1", since=T0 + 30 * MIN, until=T0 + 40 * MIN, bucket="5m").json()
    assert later["points"] == [] and later["runs"] == [{"since": T0 + 30 * MIN, "until": T0 + 40 * MIN,
                                                         "value": False}]


def test_energy_per_hour_from_a_cumulative_counter(client: TestClient, services: Services, plug: str,
                                                   op: dict[str, str]) -> None:
    # the meter reads 100 at 00:00, grows 1 a minute for 2 hours, then resets to 0 (a power cut) and grows again
    readings = [(T0 + i * MIN, 100 + i) for i in range(120)] + [(T0 + (120 + i) * MIN, i) for i in range(60)]
    write(services, plug, "11.1", readings)
    body = get(client, plug, op, key="11.1", since=T0, until=T0 + 180 * MIN - 1, bucket="1h").json()
    assert body["kind"] == "counter" and body["agg"] == "delta"
    # hour 1: 100 → 159 (59); hour 2: 159 → 219 (60); hour 3: reset, 0 → 59 counted from the reset (59)
    assert [p["value"] for p in body["points"]] == [59, 60, 59]
    # a later range counts its first hour from the last reading before it
    tail = get(client, plug, op, key="11.1", since=T0 + 60 * MIN, until=T0 + 120 * MIN - 1, bucket="1h",
               agg="delta").json()
    assert [p["value"] for p in tail["points"]] == [60]


def test_bad_input_names_the_parameter(client: TestClient, services: Services, plug: str, op: dict[str, str]) -> None:
    write(services, plug, "5.2", [(T0, "hello")])
    cases = [({"bucket": "7x"}, "invalid_bucket", "bucket"), ({"agg": "median"}, "invalid_agg", "agg"),
             ({"points": 0}, "invalid_points", "points"), ({"points": -3}, "invalid_points", "points"),
             ({"since": T0, "until": T0 + 3 * 365 * 86_400_000, "bucket": "1d"}, "invalid_range", "since"),
             ({"since": T0, "until": T0 + 30 * 86_400_000, "bucket": "1m"}, "invalid_bucket", "bucket"),
             ({"key": "2.1", "agg": "avg"}, "invalid_agg", "agg"),
             ({"key": "5.2", "agg": "max"}, "invalid_agg", "agg")]
    for params, code, word in cases:
        r = get(client, plug, op, **{"key": "11.2", **params})
        assert 400 <= r.status_code < 500, (params, r.text)
        err = r.json()["error"]
        assert err["code"] == code and word in err["message"], (params, err)
    # text still counts and shows its last value
    ok = get(client, plug, op, key="5.2", since=T0, until=T0 + MIN, bucket="1m", agg="last").json()
    assert ok["points"] == [{"ts": T0, "value": "hello", "count": 1}]


def test_raw_read_unchanged(client: TestClient, services: Services, plug: str, op: dict[str, str]) -> None:
    write(services, plug, "11.2", [(T0 + i, float(i)) for i in range(3)])
    body = get(client, plug, op, key="11.2", since=T0).json()
    assert body == {"did": plug, "key": "11.2", "samples": [{"ts": T0 + i, "value": float(i)} for i in range(3)]}


def test_sealed_values_are_opened_to_aggregate_and_only_from_the_binding(client: TestClient, services: Services,
                                                                          device: Any, op: dict[str, str]) -> None:
    plug = device.did
    before = now_ms() - 10 * MIN
    write(services, plug, "11.2", [(before, 1000.0)])  # the plug's life before Ann: unbound, not hers
    ann = signup(client, "ann@example.org")
    home = client.post("/api/v1/homes", json={"name": "Home"}, headers=ann["headers"]).json()["home_id"]
    assert client.post(f"/api/v1/homes/{home}/devices", json={"did": plug, "bind_code": device.bind_code},
                       headers=ann["headers"]).status_code == 201
    t = now_ms() + 1
    write(services, plug, "11.2", [(t + i, 10.0 * (i + 1)) for i in range(3)])  # sealed with Ann's key
    with services.dbs.cell_session("eu") as s:
        stored = s.execute(text("SELECT value, sealed FROM telemetry WHERE ts >= :t"), {"t": t}).all()
    assert len(stored) == 3 and all(v in (None, "null") and blob for v, blob in stored)  # the database holds ciphertext
    mine = get(client, plug, ann["headers"], key="11.2", since=before - MIN, until=t + MIN, bucket="1h",
               agg="avg").json()
    assert sum(p["count"] for p in mine["points"]) == 3  # not the sample from before she bound it
    assert sum(p["value"] * p["count"] for p in mine["points"]) == 60.0
    staff = get(client, plug, op, key="11.2", since=before - MIN, until=t + MIN, bucket="1h", agg="count").json()
    assert sum(p["value"] for p in staff["points"]) == 4


def test_console_30_day_chart_is_one_request_of_about_500_points(client: TestClient, services: Services, plug: str,
                                                                 op: dict[str, str]) -> None:
    now = now_ms()
    start = now - 30 * 86_400_000
    write(services, plug, "11.2", [(start + MIN + i * 5 * MIN, 50.0) for i in range(30 * 288)])  # every 5 min, 30 days
    write(services, plug, "2.1", [(start + i * 6 * 3_600_000, i % 2 == 0) for i in range(120)])  # flips every 6 h
    client.cookies.set(COOKIE, op["Authorization"].removeprefix("Bearer "), path="/console")
    power = client.get(f"/console/fleet/devices/{plug}/telemetry.json", params={"key": "11.2", "range": "30d"}).json()
    assert 200 <= len(power["x"]) <= 500 and power["count"] == 30 * 288 and not power["step"]
    assert set(power["y"]) == {50.0}
    switch = client.get(f"/console/fleet/devices/{plug}/telemetry.json", params={"key": "2.1", "range": "30d"}).json()
    assert switch["step"] is True  # a switch is drawn as steps between its state changes
    assert switch["y"][:4] == [1.0, 0.0, 1.0, 0.0] and len(switch["x"]) == 121
