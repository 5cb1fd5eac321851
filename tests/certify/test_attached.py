"""`ecohub certify run` attached to a hub started separately: the suite reaches it only through its REST API and its
broker, reads the broker's refusal log over REST (security.no_foreign_attempts runs), and drops the unit by a take-over.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv311

from ecohub.bootstrap import Services, bootstrap
from ecohub.hub import free_port, read_runtime
from ecohub.protocol import Topic
from ecohub.settings import Settings
from tests.certify.conftest import DECLARATION, hub_with, record_evidence
from tests.helpers import eventually

MODEL = "cuco.plug.v3"
pytestmark = pytest.mark.timeout(240)


async def _certify_cli(hub: Services, out: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """`ecohub certify run` as a subprocess on the hub's data dir; the hub keeps serving on this event loop."""
    decl = out.parent / f"{out.name}-declaration.json"
    decl.write_text(json.dumps(DECLARATION))
    proc = await asyncio.create_subprocess_exec(
        "ecohub", "certify", "run", "--model", MODEL, "--declaration", str(decl), "--report", str(out),
        "--market", "DE", "--market", "US", "--fast", "--data-dir", str(hub.settings.data_dir), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), json.loads((out / "report.json").read_text())


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


async def test_attached_run_reads_the_refusal_log_and_passes(tmp_path: Path) -> None:
    async with hub_with(tmp_path / "hub", [MODEL]) as hub:
        code, output, report = await _certify_cli(hub, tmp_path / "report")
        units = report["setup"]["units"]
        assert [hub.devices.get(did).status for did in units] == ["revoked", "revoked"]  # revoked over the API
    assert code == 0, output
    assert report["setup"]["hub"] == "attached" and report["setup"]["broker_refusal_log"] is True
    foreign = _checks(report)["security.no_foreign_attempts"]
    assert foreign["status"] == "pass", foreign["reason"]
    reconnect = _checks(report)["connect.reconnect"]
    assert reconnect["status"] == "pass" and reconnect["evidence"]["method"] == "session_takeover"
    assert [c["id"] for c in report["checks"] if c["status"] not in ("pass", "na")] == []
    assert all(m["passed"] for m in report["markets"])


async def test_attached_run_catches_a_device_on_foreign_topics(tmp_path: Path) -> None:
    async with hub_with(tmp_path / "hub", [MODEL]) as hub:
        code, output, report = await _certify_cli(hub, tmp_path / "report", "--simulate-fault", "foreign-topic")
    assert code == 1, output
    assert report["setup"]["hub"] == "attached"
    assert {c["id"] for c in report["checks"] if c["status"] != "pass"} == {"security.no_foreign_attempts"}
    foreign = _checks(report)["security.no_foreign_attempts"]
    assert foreign["status"] == "fail"
    assert {a["action"] for a in foreign["evidence"]["attempts"]} == {"publish", "subscribe"}
    assert [(m["market"], m["passed"]) for m in report["markets"]] == [("DE", False), ("US", True)]


async def test_refusal_log_over_rest_is_for_operators(api: httpx.AsyncClient, hub: Services, plug_model: str) -> None:
    unit = hub.devices.provision(model=plug_model)[0]
    assert hub.runtime.mqtt_port
    client = Client(unit.did, clean_session=True)
    client.set_auth_credentials(unit.did, "not-its-secret")
    client.set_config({"reconnect_retries": 0})
    with pytest.raises(Exception):  # noqa: B017 - gmqtt raises its own refusal types
        await client.connect("127.0.0.1", hub.runtime.mqtt_port, version=MQTTv311)

    async def refused() -> list[dict[str, Any]]:
        r = await api.get(f"/api/v1/devices/{unit.did}/refusals")
        assert r.status_code == 200, r.text
        return list(r.json()["refusals"])

    rows = await eventually(refused)
    assert rows[0]["action"] == "connect" and rows[0]["reason"] == "unknown device or wrong secret"
    assert isinstance(rows[0]["ts"], int)
    partner = hub.tokens.create(role="partner", partner_id="acme")["token"]
    r = await api.get(f"/api/v1/devices/{unit.did}/refusals", headers={"Authorization": f"Bearer {partner}"})
    assert r.status_code == 403
    assert (await api.get("/api/v1/devices/eu-0000000000000000/refusals")).status_code == 404
    r = await api.post(f"/api/v1/devices/{unit.did}/revoke")
    assert r.status_code == 200 and hub.devices.get(unit.did).status == "revoked"


async def test_certify_run_against_ecohub_up_passes_no_foreign_attempts_and_the_gate_needs_evidence(
        tmp_path: Path) -> None:
    """The operator's setup: `ecohub up` runs (its own process) and `ecohub certify run` attaches to it. The check
    that CE-RED and EN-18031 need must run for real there, and the run alone still opens no market."""
    data = tmp_path / "hub"
    env = {**os.environ, "COLUMNS": "200"}
    spec = Path(__file__).parent.parent / "fixtures" / "specs" / f"{MODEL}.json"
    made = await asyncio.create_subprocess_exec("ecohub", "init", "--data-dir", str(data), env=env,
                                                stdout=asyncio.subprocess.DEVNULL)
    assert await made.wait() == 0
    imported = await asyncio.create_subprocess_exec("ecohub", "spec", "import", str(spec), "--model", MODEL,
                                                    "--category", "plug", "--market", "DE", "--price", "19.90",
                                                    "--forecast", "10000", "--data-dir", str(data), env=env,
                                                    stdout=asyncio.subprocess.DEVNULL)
    assert await imported.wait() == 0
    up = await asyncio.create_subprocess_exec(
        "ecohub", "up", "--data-dir", str(data), "--http-port", str(free_port()), "--mqtt-port", str(free_port()),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await eventually(lambda: read_runtime(data), timeout=60)
        decl = tmp_path / "declaration.json"
        decl.write_text(json.dumps(DECLARATION))
        proc = await asyncio.create_subprocess_exec(
            "ecohub", "certify", "run", "--model", MODEL, "--declaration", str(decl), "--report", str(tmp_path / "r"),
            "--market", "DE", "--fast", "--data-dir", str(data), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert proc.returncode == 0, output.decode()
        assert report["setup"]["hub"] == "attached" and report["setup"]["broker_refusal_log"] is True
        foreign = _checks(report)["security.no_foreign_attempts"]
        assert foreign["status"] == "pass" and "DE" in foreign["required_by"], foreign
        assert report["markets"][0]["evidence_required"] == ["CE-RED", "EN-18031", "EU-ROHS"]
        services = bootstrap(Settings(data_dir=data))
        try:
            spec_hash = services.products.get(MODEL).spec_hash
            assert services.certification.passing_markets(MODEL, spec_hash) == frozenset()  # the wire alone: shut
            record_evidence(services, MODEL, ["DE"])
            assert services.certification.passing_markets(MODEL, spec_hash) == frozenset({"DE"})
        finally:
            services.close()
    finally:
        up.terminate()
        await asyncio.wait_for(up.wait(), timeout=30)


async def test_a_refused_publish_is_stamped_when_the_broker_refused_it(api: httpx.AsyncClient, hub: Services,
                                                                       plug_model: str) -> None:
    """The suite leaves its own impersonation out of security.no_foreign_attempts by time: a refusal stamped when the
    busy hub got round to reading the server's log fell outside that window (a CI run failed the check that way)."""
    unit, other = hub.devices.provision(model=plug_model, count=2)
    assert hub.runtime.mqtt_port
    client = Client(unit.did, clean_session=True)
    client.set_auth_credentials(unit.did, unit.secret)
    client.set_config({"reconnect_retries": 0})
    await client.connect("127.0.0.1", hub.runtime.mqtt_port, version=MQTTv311)
    try:
        client.publish(Topic.up(other.did), b'{"id":1,"method":"properties_changed","params":[]}', qos=1)

        async def refused() -> list[dict[str, Any]]:
            r = await api.get(f"/api/v1/devices/{unit.did}/refusals")
            return [row for row in r.json()["refusals"] if row["action"] == "publish"]

        rows = await eventually(refused)
    finally:
        await client.disconnect()
    log_file = next(hub.settings.data_dir.rglob("nats-server.log"))
    line = next(ln for ln in log_file.read_text().splitlines()
                if f'"{unit.did}" - Publish Violation' in ln and Topic.up(other.did).replace("/", ".") in ln)
    stamp = re.match(r"\[\d+\] (\S+ \S+) ", line)
    assert stamp is not None, line
    logged = datetime.strptime(stamp.group(1), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC)  # logtime_utc
    assert abs(rows[0]["ts"] - logged.timestamp() * 1000) <= 5, (rows[0], line)
