"""The checks are pure functions of the gathered facts: each fires exactly past its threshold (the firmware checks
read the twin's `firmware_version`, which OTA reports; here their facts are given — tests/security/test_firmware.py
runs them on real devices and campaigns)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx

from ecohub.bootstrap import Services
from ecohub.security.checks import BY_ID
from ecohub.security.domain import DeviceFacts, Facts, ProductFacts, Thresholds

NOW = 1_800_000_000_000
DAY = 86_400_000


def _facts(**kw: object) -> Facts:
    f = Facts(now_ms=NOW, today=date(2027, 1, 15), thresholds=Thresholds())
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def _run(check: str, facts: Facts) -> dict[str, dict[str, object]]:
    return {h.subject: h.detail for h in BY_ID[check].run(facts)}


def test_vulnerable_firmware_matches_model_and_version() -> None:
    devices = [DeviceFacts("eu-01", "eu", "acme.plug.v1", "1.2.0"), DeviceFacts("eu-02", "eu", "acme.plug.v1", "1.3.0"),
               DeviceFacts("eu-03", "eu", "acme.bulb.v1", "1.2.0"), DeviceFacts("eu-04", "eu", "acme.plug.v1", None)]
    hits = _run("firmware.vulnerable", _facts(devices=devices, vulnerable={("acme.plug.v1", "1.2.0"): "CVE-1"}))
    assert hits == {"eu-01": {"model": "acme.plug.v1", "firmware_version": "1.2.0", "reason": "CVE-1"}}


def test_never_updated_only_past_the_limit_on_the_first_version() -> None:
    old, young = NOW - 400 * DAY, NOW - 10 * DAY
    devices = [DeviceFacts("eu-01", "eu", "m", "1.0", ("1.0", old)),
               DeviceFacts("eu-02", "eu", "m", "1.0", ("1.0", young)),
               DeviceFacts("eu-03", "eu", "m", "2.0", None), DeviceFacts("eu-04", "eu", "m", None, None),
               DeviceFacts("eu-05", "eu", "m", "1.0", ("1.0", old), NOW - 30 * DAY)]  # an OTA update completed
    assert set(_run("firmware.never_updated", _facts(devices=devices))) == {"eu-01"}


def test_thresholds_are_inclusive_for_counts_and_strict_for_rates() -> None:
    t = Thresholds()
    f = _facts(auth_failures={"eu-01": (t.auth_failures, 1), "eu-02": (t.auth_failures - 1, 1)},
               source_addresses={"eu-01": t.source_addresses, "eu-02": t.source_addresses - 1})
    assert set(_run("auth.repeated_failures", f)) == {"eu-01"}
    assert set(_run("connect.many_addresses", f)) == {"eu-01"}
    product = ProductFacts("m", "launched", 2, {"limits": {"max_messages_per_s": 1}}, None)
    f = _facts(devices=[DeviceFacts("eu-01", "eu", "m"), DeviceFacts("eu-02", "eu", "m")], products={"m": product},
               message_counts={"eu-01": 300, "eu-02": 301})
    assert set(_run("ingest.rate_exceeded", f)) == {"eu-02"}  # 1.0/s is the limit itself, 1.003/s is over it


def test_products_in_concept_without_devices_need_no_declaration() -> None:
    expired = datetime.now(UTC) - timedelta(days=1)
    products = {"a": ProductFacts("a", "defined", 0, None, None), "b": ProductFacts("b", "launched", 0, None, None),
                "c": ProductFacts("c", "certification", 3, {"x": 1}, expired)}
    assert {k: v["problem"] for k, v in _run("declaration.missing_or_expired", _facts(products=products)).items()} == \
        {"b": "missing", "c": "expired"}


def test_the_audit_remembers_the_first_firmware_it_saw(services: Services) -> None:
    svc = services.security.service
    assert svc._track_firmware("eu", {"eu-01": "1.0", "eu-02": None}, NOW) == {"eu-01": ("1.0", NOW)}
    assert svc._track_firmware("eu", {"eu-01": "1.0"}, NOW + DAY) == {"eu-01": ("1.0", NOW)}
    assert svc._track_firmware("eu", {"eu-01": "1.1"}, NOW + 2 * DAY) == {}  # updated once: never "never updated"
    assert svc._track_firmware("eu", {"eu-01": "1.0"}, NOW + 3 * DAY) == {}


async def test_marking_a_version_vulnerable_is_validated_and_audited(api: httpx.AsyncClient, hub: Services,
                                                                    plug_model: str) -> None:
    body = {"model": plug_model, "version": "1.2.0", "reason": "CVE-2026-0001: OTA without signature check"}
    r = await api.post("/api/v1/security/vulnerable-firmware", json=body)
    assert r.status_code == 201, r.text
    listed = (await api.get("/api/v1/security/vulnerable-firmware")).json()
    assert [(v["model"], v["version"]) for v in listed] == [(plug_model, "1.2.0")]
    assert any(e["action"] == "security.firmware.marked_vulnerable" and e["subject"] == plug_model
               for e in hub.privacy.audit.entries("eu"))
    r = await api.post("/api/v1/security/vulnerable-firmware", json={**body, "model": "nope.nope.v1"})
    assert r.status_code == 404
    r = await api.post("/api/v1/security/vulnerable-firmware", json={**body, "reason": ""})
    assert r.status_code == 422
