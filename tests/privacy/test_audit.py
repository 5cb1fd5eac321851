"""The audit chain: staff reads of bound devices and DSR steps are logged; `ecohub audit verify` catches tampering."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecohub.api.console.common import COOKIE
from ecohub.bootstrap import Services
from ecohub.cli.app import app

runner = CliRunner()


def _verify(services: Services) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["audit", "verify", "--cell", "eu", "--json",
                                 "--data-dir", str(services.settings.data_dir)])
    return result.exit_code, json.loads(result.stdout)


def test_operator_reads_of_a_bound_device_are_audited_and_its_partner_reads_nothing(
        client: TestClient, services: Services, world: dict[str, Any]) -> None:
    did = world["did"]
    assert client.get(f"/api/v1/devices/{did}/telemetry", params={"key": "11.1"},
                      headers=world["operator"]).status_code == 200
    # the maker no longer reads a user's device by its id (pseudonymous, consented fleet data only)
    assert client.get(f"/api/v1/devices/{did}/telemetry", params={"key": "11.1"},
                      headers=world["acme"]).status_code == 404
    assert client.get(f"/api/v1/devices/{did}/twin", headers=world["ann"]["headers"]).status_code == 200
    entries = services.privacy.audit.entries("eu", subject=did)
    assert [(e["action"], e["actor"].split(":")[0]) for e in reversed(entries)] == [
        ("staff.read.telemetry", "operator")]  # the owner's own read is not staff; the refused one read nothing
    assert entries[0]["detail"] == {"key": "11.1"}


def test_operator_reads_in_the_console_are_audited_too(client: TestClient, services: Services,
                                                        world: dict[str, Any]) -> None:
    did = world["did"]
    client.cookies.set(COOKIE, world["operator"]["Authorization"].removeprefix("Bearer "), path="/console")
    assert client.get(f"/console/fleet/devices/{did}").status_code == 200
    assert client.get(f"/console/fleet/devices/{did}/telemetry.json", params={"key": "11.1"}).status_code == 200
    fleet = client.get("/console/fleet")  # the list shows counts only: no per-device read to audit
    assert fleet.status_code == 200 and did in fleet.text
    actions = [e["action"] for e in reversed(services.privacy.audit.entries("eu", subject=did))]
    assert actions == ["staff.read.twin", "staff.read.events", "staff.read.telemetry"]


def _tamper(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql)


def test_verify_detects_modified_and_removed_entries(services: Services) -> None:
    audit = services.privacy.audit
    for i in range(5):
        audit.append("eu", actor="operator:t", action="staff.read.twin", subject=f"eu-{i:016x}", detail={"n": i})
    code, doc = _verify(services)
    assert code == 0 and doc["ok"] and doc["cells"][0]["entries"] == 5
    db = services.settings.data_dir / "cell-eu.db"

    _tamper(db, "update audit_log set actor = 'operator:someone-else' where seq = 2")
    code, doc = _verify(services)
    assert code == 1 and any("entry 2 was modified" in p for p in doc["cells"][0]["problems"])
    _tamper(db, "update audit_log set actor = 'operator:t' where seq = 2")
    assert _verify(services)[0] == 0

    _tamper(db, "delete from audit_log where seq = 3")
    code, doc = _verify(services)
    problems = doc["cells"][0]["problems"]
    assert code == 1 and "entries 3..3 are missing" in problems
    assert "entry 4 does not link to the entry before it" in problems


def test_verify_detects_a_truncated_tail(services: Services) -> None:
    audit = services.privacy.audit
    for i in range(3):
        audit.append("eu", actor="operator:t", action="staff.read.twin", detail={"n": i})
    _tamper(services.settings.data_dir / "cell-eu.db", "delete from audit_log where seq = 3")
    code, doc = _verify(services)
    assert code == 1 and "removed" in doc["cells"][0]["problems"][0]
