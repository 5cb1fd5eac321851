"""Data-subject requests through the API: export zip, erasure with partner fan-out and receipt, rectification."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from ecohub.errors import Conflict, Forbidden, NotFound
from ecohub.privacy.datamap import personal_tables
from ecohub.privacy.domain import add_months
from tests.home.conftest import PASSWORD

PW = {"X-Password": PASSWORD}


def _actions(services: Services, subject: str) -> list[str]:
    return [e["action"] for e in reversed(services.privacy.audit.entries("eu", subject=subject, limit=100))]


def test_export_is_a_zip_of_json_and_csv_per_store(client: TestClient, services: Services,
                                                   world: dict[str, Any]) -> None:
    r = client.get("/api/v1/privacy/export", headers={**world["ann"]["headers"], **PW})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(zf.namelist())
    for store in ("users", "homes", "bindings", "telemetry", "twin_properties", "consents", "automation_rules"):
        assert {f"{store}.json", f"{store}.csv"} <= names
    assert "subject_keys.json" not in names
    users = json.loads(zf.read("users.json"))
    assert users[0]["email"] == "ann@example.org" and "argon2" not in users[0]["password_hash"]
    telemetry = json.loads(zf.read("telemetry.json"))
    assert len(telemetry) == 6 and {t["did"] for t in telemetry} == {world["did"]}
    # stored sealed with Ann's key, exported opened: the values she reported, not ciphertext
    assert {(t["key"], t["value"]) for t in telemetry} == {("2.1", True), ("11.1", 7)}
    assert "sealed" not in telemetry[0] and telemetry[0]["subject"] == world["ann"]["user_id"]
    csv_lines = zf.read("telemetry.csv").decode().splitlines()
    assert csv_lines[0] == "id,did,key,ts,value,msg_id,subject"
    assert {line.split(",")[4] for line in csv_lines[1:]} == {"true", "7"}
    twin = {p["key"]: p["value"] for p in json.loads(zf.read("twin_properties.json"))}
    assert twin == {"2.1": True, "11.1": 7}
    manifest = json.loads(zf.read("manifest.json"))
    status = services.privacy.dsr.status("eu", manifest["request_id"])
    assert status["status"] == "complete" and set(status["steps"]) == set(personal_tables())


def test_erasure_fans_out_to_partners_and_completes_with_a_receipt(client: TestClient, services: Services,
                                                                  world: dict[str, Any]) -> None:
    ann, did = world["ann"], world["did"]
    client.post("/api/v1/privacy/consents", json={"purpose": "device_diagnostics_to_maker", "given": True,
                                                  "text_version": "1"}, headers=ann["headers"])
    assert len(client.get("/api/v1/partner/fleet", headers=world["acme"]).json()["devices"]) == 1  # acme received

    r = client.delete("/api/v1/privacy/me", headers={**ann["headers"], **PW})
    assert r.status_code == 202, r.text
    body = r.json()
    received = datetime.fromisoformat(body["received_at"])
    assert datetime.fromisoformat(body["due"]) == add_months(received, 1)
    assert body["status"] == "open" and body["steps"]["partner:acme"]["status"] == "pending"
    assert body["steps"]["telemetry"] == {"status": "done", "deleted": 6}
    assert body["steps"]["subject_keys"]["status"] == "done" and body["steps"]["audit_log"]["status"] == "retained"
    assert client.get("/api/v1/me", headers=ann["headers"]).status_code == 401  # the account is gone

    notices = client.get("/api/v1/partner/erasures", headers=world["acme"]).json()
    assert notices[0]["devices"] == [services.privacy.partners.pseudonym("acme", did)]
    assert client.post(f"/api/v1/partner/erasures/{body['request_id']}/ack", headers=world["other"]).status_code == 404
    ack = client.post(f"/api/v1/partner/erasures/{body['request_id']}/ack", headers=world["acme"])
    assert ack.json()["status"] == "complete"
    done = services.privacy.dsr.status("eu", body["request_id"])
    assert done["receipt"]["stores"]["partner:acme"]["status"] == "done"
    assert done["receipt"]["stores"]["users"] == {"status": "done", "deleted": 1}
    assert services.telemetry.count("eu", did) == 0 and services.twin.get("eu", did)["properties"] == {}
    acts = _actions(services, ann["user_id"])
    assert acts[:3] == ["dsr.erasure.received", "dsr.erasure.key_destroyed", "dsr.erasure.rows_deleted"]
    assert acts[-1] == "dsr.erasure.complete"

    dsr = services.privacy.dsr
    with pytest.raises(Conflict) as twice:
        dsr.erase("eu", ann["user_id"], actor="operator:t")
    assert twice.value.code == "already_erased"
    with pytest.raises(NotFound) as export:
        dsr.export("eu", ann["user_id"], actor="operator:t")
    assert export.value.code == "subject_erased"
    assert _actions(services, ann["user_id"])[-2:] == ["dsr.erasure.refused", "dsr.export.refused"]


def test_bad_requests_are_refused_audited_and_change_nothing(client: TestClient, services: Services,
                                                            world: dict[str, Any]) -> None:
    ann = world["ann"]
    for headers in (ann["headers"], {**ann["headers"], "X-Password": "wrong password!"}):
        r = client.delete("/api/v1/privacy/me", headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "identity_not_verified")
        r = client.get("/api/v1/privacy/export", headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "identity_not_verified")
    assert client.get("/api/v1/me", headers=ann["headers"]).status_code == 200
    assert services.telemetry.count("eu", world["did"]) == 6
    assert _actions(services, ann["user_id"]).count("dsr.erasure.refused") == 2

    dsr = services.privacy.dsr
    with pytest.raises(NotFound) as unknown:
        dsr.erase("eu", "f" * 24, actor="operator:t")
    assert unknown.value.code == "unknown_subject"
    with pytest.raises(Forbidden) as wrong:
        dsr.export("us", ann["user_id"], actor="operator:t")
    assert (wrong.value.code, wrong.value.details["cell"]) == ("wrong_cell", "eu")
    foreign = client.get("/api/v1/privacy/consents", headers={"Authorization": "Bearer ehu_mars_" + "x" * 43})
    assert (foreign.status_code, foreign.json()["error"]["cell"]) == (403, "mars")


def test_a_store_left_unhandled_keeps_the_request_open(services: Services, world: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(services.privacy.registry.handlers, "rooms")
    status, f = services.privacy.dsr.export("eu", world["ann"]["user_id"], actor="operator:t")
    f.close()
    assert status["status"] == "open" and status["steps"]["rooms"]["status"] == "skipped"
    extended = services.privacy.dsr.extend("eu", status["request_id"], reason="complex request", actor="operator:t")
    assert datetime.fromisoformat(extended["due"]) == add_months(datetime.fromisoformat(status["received_at"]), 3)
    with pytest.raises(Conflict):
        services.privacy.dsr.extend("eu", status["request_id"], reason="again", actor="operator:t")


def test_rectification_changes_the_email_everywhere_it_is_used(client: TestClient, world: dict[str, Any]) -> None:
    ann = world["ann"]
    r = client.patch("/api/v1/privacy/me", json={"email": "ann.new@example.org", "password": PASSWORD},
                     headers=ann["headers"])
    assert r.status_code == 200 and r.json()["status"] == "complete"
    assert client.get("/api/v1/me", headers=ann["headers"]).json()["email"] == "ann.new@example.org"
    t = client.post("/api/v1/auth/token", data={"username": "ann.new@example.org", "password": PASSWORD})
    assert t.status_code == 200
    assert client.post("/api/v1/auth/token", data={"username": "ann@example.org", "password": PASSWORD}
                       ).status_code == 401


@pytest.mark.parametrize(("day", "months", "expected"), [
    ("2026-01-31", 1, "2026-02-28"), ("2028-01-31", 1, "2028-02-29"), ("2026-11-27", 1, "2026-12-27"),
    ("2026-12-15", 1, "2027-01-15"), ("2026-11-30", 3, "2027-02-28")])
def test_deadlines_are_calendar_months(day: str, months: int, expected: str) -> None:
    ts = datetime.fromisoformat(day).replace(tzinfo=UTC)
    assert add_months(ts, months).date().isoformat() == expected
