"""Consent ledger and the partner's pseudonymous fleet feed: only consenting owners, withdrawal acts at once."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ecohub.bootstrap import Services

CONSENT = {"purpose": "device_diagnostics_to_maker", "text_version": "2026-11"}


def _fleet(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    r = client.get("/api/v1/partner/fleet", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_consent_ledger_keeps_every_decision(client: TestClient, world: dict[str, Any]) -> None:
    h = world["ann"]["headers"]
    current = client.get("/api/v1/privacy/consents", headers=h).json()["current"]
    assert {c["purpose"]: c["given"] for c in current} == {"device_diagnostics_to_maker": False,
                                                           "product_improvement_analytics": False}
    assert client.post("/api/v1/privacy/consents", json={**CONSENT, "given": True}, headers=h).status_code == 201
    r = client.post("/api/v1/privacy/consents", json={**CONSENT, "given": False, "text_version": "2026-12"}, headers=h)
    assert r.json()["given"] is False and r.json()["text_version"] == "2026-12"
    history = client.get("/api/v1/privacy/consents", headers=h).json()["history"]
    assert [(e["given"], e["text_version"]) for e in history] == [(True, "2026-11"), (False, "2026-12")]
    bad = client.post("/api/v1/privacy/consents", json={**CONSENT, "purpose": "selling", "given": True}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_purpose"


def test_partner_sees_pseudonymous_devices_only_while_the_owner_consents(
        client: TestClient, services: Services, world: dict[str, Any]) -> None:
    did, h = world["did"], world["ann"]["headers"]
    before = _fleet(client, world["acme"])
    assert before["devices"] == []
    assert before["aggregate"] == [{"model": "acme.plug.v1", "devices": 1, "bound": 1, "online": 0}]

    client.post("/api/v1/privacy/consents", json={**CONSENT, "given": True}, headers=h)
    feed = _fleet(client, world["acme"])
    assert len(feed["devices"]) == 1
    device = feed["devices"][0]
    assert device["properties"]["11.1"]["value"] == 7
    assert did not in str(feed) and world["ann"]["user_id"] not in str(feed)
    assert device["device"] == _fleet(client, world["acme"])["devices"][0]["device"]  # stable for this partner
    assert device["device"] != services.privacy.partners.pseudonym("other", did)  # unlinkable across partners
    assert _fleet(client, world["other"])["devices"] == []  # not their product

    client.post("/api/v1/privacy/consents", json={**CONSENT, "given": False}, headers=h)
    assert _fleet(client, world["acme"])["devices"] == []  # the very next request

    reads = services.privacy.audit.entries("eu", limit=20)
    assert any(e["action"] == "partner.fleet_read" and e["detail"]["subjects"] == [world["ann"]["user_id"]]
               for e in reads)


def test_fleet_is_for_partners_only(client: TestClient, world: dict[str, Any]) -> None:
    assert client.get("/api/v1/partner/fleet").status_code == 401
    for who in (world["operator"], world["ann"]["headers"]):
        assert client.get("/api/v1/partner/fleet", headers=who).status_code == 403
