"""The fleet security audit: each check fires on a real situation (real MQTT clients, the real auth callout, real
certification reports, real ingest) and clears when the situation is gone; findings are idempotent; decisions
are audited; a new critical finding reaches the console banner and the operator's webhook."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.certify.report import build, sign
from ecohub.connect.events import DeviceConnectAttempted
from ecohub.hub import free_port, running_hub
from ecohub.netguard import UrlPolicy
from ecohub.sdk.device import Device, DeviceError
from ecohub.sdk.simulator import SimulatedDevice
from ecohub.security.checks import CHECKS
from ecohub.security.domain import Check, Hit, Severity
from ecohub.security.notify import WebhookNotifier
from ecohub.settings import Settings
from ecohub.store import now_ms
from tests.conftest import load_spec
from tests.helpers import DEFINITION, eventually
from tests.security.conftest import Receiver

HOUR_MS = 3_600_000
DECLARATION: dict[str, Any] = {
    "vulnerability_disclosure": {"contact": "security@partner.example"},
    "support_period": {"end": "2035-12-31"},
    "secure_update": {"mechanism": "signed OTA over HTTPS", "signed": True},
    "privacy": {"personal_data": []},
    "limits": {"max_messages_per_s": 20},
}


def _record_report(hub: Services, model: str, declaration: dict[str, Any] | None, *,
                   issued: datetime | None = None, validity_days: int = 365) -> None:
    """A brand-signed certification report carrying the product's declaration, recorded as the suite would."""
    issued = issued or datetime.now(UTC)
    doc = build(report_id=str(uuid.uuid4()), model=model, spec_hash=hub.products.get(model).spec_hash,
                spec_version=1, checks=[], markets=[], setup={}, declaration=declaration, started_at=issued,
                finished_at=issued, validity_days=validity_days)
    hub.certification.record(sign(doc, hub.certification.signing_key()))


async def _audit(api: httpx.AsyncClient) -> dict[str, Any]:
    r = await api.post("/api/v1/security/audit")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _findings(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/security/findings", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _callout_request(did: str, secret: str, host: str) -> dict[str, Any]:
    """An auth callout request as nats-server sends it for an MQTT CONNECT from `host`."""
    return {"nats": {"user_nkey": "U" + "A" * 55, "connect_opts": {"user": did, "pass": secret},
                     "client_info": {"type": "mqtt", "mqtt_id": did, "host": host}}}


async def test_thirty_wrong_secret_connects_raise_a_finding_that_clears(api: httpx.AsyncClient, hub: Services,
                                                                       plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    for _ in range(30):
        with pytest.raises(DeviceError):
            await Device(did=creds.did, secret="not-the-secret", spec=load_spec(plug_model),
                         port=hub.runtime.mqtt_port or 0).connect()
    summary = await _audit(api)
    assert summary["opened"] >= 1
    [found] = await _findings(api, kind="auth.repeated_failures")
    assert found["subject"] == creds.did and found["severity"] == "high" and found["status"] == "open"
    assert found["detail"]["failures"] == 30 and found["detail"]["addresses"] == 1
    # idempotent: a second run refreshes it, opens nothing
    again = await _audit(api)
    assert [f["id"] for f in await _findings(api, kind="auth.repeated_failures")] == [found["id"]]
    assert again["opened"] == 0
    # two hours on, the failures are out of the window: the finding is resolved, not deleted
    hub.security.service.audit(now=now_ms() + 2 * HOUR_MS)
    [closed] = await _findings(api, kind="auth.repeated_failures")
    assert closed["id"] == found["id"] and closed["status"] == "resolved" and closed["resolved_ts"]
    assert await _findings(api, kind="auth.repeated_failures", status="open") == []


async def test_one_device_from_many_addresses_is_found_and_an_acknowledgement_is_audited(
        api: httpx.AsyncClient, hub: Services, plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    assert hub.plane is not None and hub.plane.responder is not None
    for i in range(12):  # through the real callout: the secret is checked, a user JWT issued, the address recorded
        jwt, reason = await hub.plane.responder.decide(_callout_request(creds.did, creds.secret, f"198.51.100.{i}"))
        assert jwt and not reason
    await _audit(api)
    [found] = await _findings(api, kind="connect.many_addresses")
    assert found["subject"] == creds.did and found["detail"]["addresses"] == 12 and found["severity"] == "medium"

    r = await api.post(f"/api/v1/security/findings/{found['id']}:acknowledge", json={"reason": ""})
    assert r.status_code == 422
    r = await api.post(f"/api/v1/security/findings/{found['id']}:acknowledge",
                       json={"reason": "customer moved the plug between offices"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["reason"] == "customer moved the plug between offices"
    entries = hub.privacy.audit.entries("eu", subject=creds.did)
    assert any(e["action"] == "security.finding.acknowledged" and e["detail"]["finding"] == found["id"]
               for e in entries)
    assert hub.privacy.audit.verify("eu").ok
    r = await api.post(f"/api/v1/security/findings/{found['id']}:acknowledge", json={"reason": "twice"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "finding_closed"
    # still true: an audit keeps it acknowledged; a day later it is resolved
    await _audit(api)
    assert (await _findings(api, kind="connect.many_addresses"))[0]["status"] == "acknowledged"
    hub.security.service.audit(now=now_ms() + 26 * HOUR_MS)
    assert (await _findings(api, kind="connect.many_addresses"))[0]["status"] == "resolved"


async def test_rate_above_the_declared_limit_and_a_support_period_that_ended(api: httpx.AsyncClient, hub: Services,
                                                                            plug_model: str) -> None:
    _record_report(hub, plug_model, {**DECLARATION, "limits": {"max_messages_per_s": 0.01},
                                     "support_period": {"end": "2024-06-30"}})
    creds = hub.devices.provision(model=plug_model)[0]
    dev = SimulatedDevice(did=creds.did, secret=creds.secret, spec=load_spec(plug_model),
                          port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    try:
        for i in range(6):  # 6 messages in a 300 s window: 0.02/s, twice the declared 0.01/s
            dev.report({(2, 1): i % 2 == 0})
        await eventually(lambda: hub.devices.message_counts("eu", since_ms=now_ms() - 60_000).get(creds.did) == 6)
    finally:
        await dev.disconnect()
    await _audit(api)
    [rate] = await _findings(api, kind="ingest.rate_exceeded")
    assert rate["subject"] == creds.did and rate["detail"]["messages"] == 6 and rate["detail"]["declared_per_s"] == 0.01
    [ended] = await _findings(api, kind="support.period_ended")
    assert ended["subject"] == creds.did and ended["detail"]["support_ended"] == "2024-06-30"
    # ten minutes later the window holds none of those messages
    hub.security.service.audit(now=now_ms() + 600_000)
    assert (await _findings(api, kind="ingest.rate_exceeded"))[0]["status"] == "resolved"
    # a new declaration with a support period still running clears the other
    _record_report(hub, plug_model, DECLARATION)
    await _audit(api)
    assert (await _findings(api, kind="support.period_ended"))[0]["status"] == "resolved"


async def test_products_in_the_field_without_a_valid_declaration(api: httpx.AsyncClient, hub: Services,
                                                                plug_model: str) -> None:
    hub.devices.provision(model=plug_model)  # a test unit in the field, no report yet
    await _audit(api)
    [missing] = await _findings(api, kind="declaration.missing_or_expired")
    assert missing["subject"] == plug_model and missing["subject_kind"] == "product"
    assert missing["detail"]["problem"] == "missing"
    _record_report(hub, plug_model, DECLARATION, issued=datetime.now(UTC) - timedelta(days=400))
    await _audit(api)
    [expired] = await _findings(api, kind="declaration.missing_or_expired")
    assert expired["id"] == missing["id"] and expired["detail"]["problem"] == "expired"
    _record_report(hub, plug_model, DECLARATION)
    await _audit(api)
    assert (await _findings(api, kind="declaration.missing_or_expired"))[0]["status"] == "resolved"


async def test_suppressed_stays_suppressed_and_only_the_operator_sees_findings(
        api: httpx.AsyncClient, hub: Services, plug_model: str) -> None:
    hub.devices.provision(model=plug_model)
    await _audit(api)
    [f] = await _findings(api, kind="declaration.missing_or_expired")
    r = await api.post(f"/api/v1/security/findings/{f['id']}:suppress", json={"reason": "lab units only"})
    assert r.status_code == 200 and r.json()["status"] == "suppressed"
    assert any(e["action"] == "security.finding.suppressed" for e in hub.privacy.audit.entries("eu"))
    await _audit(api)
    assert [(x["id"], x["status"]) for x in await _findings(api, kind="declaration.missing_or_expired")] == \
        [(f["id"], "suppressed")]
    assert (await api.post("/api/v1/security/findings/eu-999999:acknowledge", json={"reason": "x"})).status_code == 404
    r = await api.get("/api/v1/security/findings", params={"severity": "urgent"})
    assert r.status_code == 422 and "severity" in r.json()["error"]["message"]
    partner = hub.tokens.create(role="partner", partner_id="p-1", label="t")["token"]
    r = await api.get("/api/v1/security/findings", headers={"Authorization": f"Bearer {partner}"})
    assert r.status_code == 403


async def test_a_new_critical_finding_shows_a_banner_and_reaches_the_webhook_once(
        api: httpx.AsyncClient, hub: Services, plug_model: str, receiver: Receiver, operator_token: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    # the registry is data: a critical check that holds for this device (test_firmware.py raises the real critical
    # one, firmware.vulnerable, on a simulated device)
    hub.security.service.checks += (Check("test.critical", Severity.CRITICAL, "a critical condition", "device",
                                          lambda f: [Hit(creds.did, {"why": "test"}, "eu")]),)
    url = hub.runtime.http_url
    async with httpx.AsyncClient(base_url=url or "", headers={"Origin": url or ""}) as browser:
        r = await browser.post("/console/login", data={"token": operator_token}, follow_redirects=False)
        assert r.status_code == 303
        assert "security finding" not in (await browser.get("/console/")).text
        summary = await _audit(api)
        assert summary["notified"] == 1
        page = (await browser.get("/console/markets")).text
        assert "1 open critical security finding" in page and "/console/security" in page
        assert creds.did in (await browser.get("/console/security")).text
    assert [p["finding"]["kind"] for p in receiver.posts] == ["test.critical"]
    assert receiver.posts[0]["finding"]["subject"] == creds.did
    await _audit(api)
    assert len(receiver.posts) == 1  # re-running does not notify again


def test_every_check_has_an_id_severity_and_description() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids)) and all(c.description and c.severity in Severity for c in CHECKS)
    assert {"firmware.vulnerable", "support.period_ended", "auth.repeated_failures", "connect.many_addresses",
            "ingest.rate_exceeded", "declaration.missing_or_expired", "firmware.never_updated"} <= set(ids)


async def test_the_hub_runs_the_audit_on_its_own_schedule(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", security={"audit_interval_s": 0.2})
    services = bootstrap(settings)
    try:
        services.products.import_spec(load_spec("cuco.plug.v3"), model="cuco.plug.v3", actor="test",
                                      **DEFINITION)
        services.devices.provision(model="cuco.plug.v3")  # in the field without a declaration
        async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()):
            found = await eventually(lambda: services.security.service.findings(kind="declaration.missing_or_expired"))
            assert found[0]["subject"] == "cuco.plug.v3"
    finally:
        services.close()


def test_connect_records_are_forgotten_after_their_retention(services: Services) -> None:
    old, new = now_ms() - 40 * 86_400_000, now_ms()
    services.security.service.record_connects([
        DeviceConnectAttempted("eu-00000000000000c1", "203.0.113.7", False, "bad credentials", old),
        DeviceConnectAttempted("eu-00000000000000c1", "203.0.113.7", False, "bad credentials", new)])
    assert services.security.service.prune(before_ms=now_ms() - 30 * 86_400_000) == 1
    facts = services.security.service.gather()
    assert facts.auth_failures == {"eu-00000000000000c1": (1, 1)}


def test_the_webhook_goes_through_the_ssrf_guard(receiver: Receiver) -> None:
    assert not WebhookNotifier(receiver.url, UrlPolicy()).send({"id": "eu-1"})  # loopback: refused unsent
    assert receiver.posts == []
    assert WebhookNotifier(receiver.url, UrlPolicy(allow_private=True)).send({"id": "eu-1"})
    assert receiver.posts == [{"event": "security.finding", "finding": {"id": "eu-1"}}]
