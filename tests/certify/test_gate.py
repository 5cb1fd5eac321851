"""The listing gate as an attacker of the brand's promise would try it: the wire alone, stale specs, expired and
revoked evidence, partners approving their own evidence. Every market opens only with a valid report for the
current spec and valid evidence for each regime; what stops qualifying leaves sale with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from ecohub.api.app import create_app
from ecohub.api.console.common import COOKIE
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services, bootstrap
from ecohub.certify.domain import CHECKS, MAX_EVIDENCE_BYTES, Status, market_verdicts
from ecohub.certify.models import CertificationEvidence
from ecohub.certify.report import build, sign
from ecohub.errors import Conflict, Forbidden, InvalidInput, PayloadTooLarge
from ecohub.hub import free_port, running_hub
from ecohub.settings import Settings
from tests.certify.conftest import DECLARATION, record_evidence
from tests.conftest import load_spec
from tests.helpers import DEFINITION, approve_design, at_target, eventually, price_for_sale

MODEL = "acme.plug.v1"
ACME = Principal(Role.PARTNER, "tok-acme", partner_id="acme")


def signed_report(services: Services, model: str = MODEL, *, failing: tuple[str, ...] = ()) -> dict[str, Any]:
    """A brand-signed report for the product's current spec, recorded; every check passes except `failing`."""
    product = services.products.get(model)
    checks = [{"id": c.id, "title": c.title, "category": c.category, "status": "fail" if c.id in failing else "pass",
               "reason": "", "duration_ms": 1, "evidence": {}} for c in CHECKS]
    markets = market_verdicts({c["id"]: Status(c["status"]) for c in checks}, ["DE", "US"],
                              services.certification.market_table())
    now = datetime.now(UTC)
    doc = sign(build(report_id=str(uuid.uuid4()), model=model, spec_hash=product.spec_hash,
                     spec_version=product.spec_version, checks=checks, markets=markets, setup={},
                     declaration=DECLARATION, started_at=now, finished_at=now), services.certification.signing_key())
    services.certification.record(doc)
    return doc


def _product(services: Services) -> None:
    services.products.import_spec(load_spec("cuco.plug.v3"), model=MODEL, actor="test", partner_id="acme",
                                  **DEFINITION)
    approve_design(services, MODEL)
    price_for_sale(services, MODEL)


def _on_sale(services: Services) -> list[dict[str, Any]]:
    """The product approved and listed in DE and US, on a passing report and valid evidence."""
    _product(services)
    signed_report(services)
    record_evidence(services, MODEL, ["DE", "US"])
    services.products.transition(MODEL, "approved", actor="test")
    return [services.ecosystem.listings.add(MODEL, m, price=at_target(services, MODEL, m), actor="test")
            for m in ("DE", "US")]


def _availability(services: Services) -> dict[str, tuple[str, str | None]]:
    return {x["market"]: (x["availability"], x["reason"]) for x in services.ecosystem.listings.list(model=MODEL)}


def test_wire_checks_alone_open_no_market(services: Services) -> None:
    """One run used to open all 91 markets, CN and JP included: regimes the suite cannot test counted as passed."""
    _product(services)
    signed_report(services)  # every on-the-wire check passed
    spec_hash = services.products.get(MODEL).spec_hash
    assert services.certification.passing_markets(MODEL, spec_hash) == frozenset()
    gate = services.certification.market_gate(MODEL, spec_hash, ["DE", "CN", "JP", "US"])
    assert "CE-RED" in str(gate["DE"]) and "EU-ROHS" in str(gate["DE"]) and "CCC" in str(gate["CN"])
    assert "TELEC" in str(gate["JP"]) and "FCC" in str(gate["US"])
    with pytest.raises(Conflict) as err:
        services.products.transition(MODEL, "approved", actor="test")
    assert err.value.code == "guard_failed"
    record_evidence(services, MODEL, ["DE"])
    assert services.certification.passing_markets(MODEL, spec_hash) == frozenset({"DE"})
    record_evidence(services, MODEL, ["US"])
    services.products.transition(MODEL, "approved", actor="test")
    with pytest.raises(Conflict) as err:
        services.ecosystem.listings.add(MODEL, "JP", price="2000", actor="test")
    assert err.value.code == "certification_required" and "TELEC" in err.value.message


def test_failing_required_check_keeps_the_market_shut_even_with_evidence(services: Services) -> None:
    _product(services)
    record_evidence(services, MODEL, ["DE", "US"])
    signed_report(services, failing=("security.no_foreign_attempts",))  # CE-RED and EN-18031 need it, FCC not
    spec_hash = services.products.get(MODEL).spec_hash
    assert services.certification.passing_markets(MODEL, spec_hash) == frozenset({"US"})
    assert "security.no_foreign_attempts" in str(services.certification.market_gate(MODEL, spec_hash, ["DE"])["DE"])


def test_spec_change_suspends_listings_on_the_old_report_and_blocks_launch(services: Services) -> None:
    _on_sale(services)
    document = load_spec("cuco.plug.v3")
    document["description"] = "a compatible new spec version"
    services.products.import_spec(document, model=MODEL, actor="test")
    state = _availability(services)
    assert {a for a, _ in state.values()} == {"suspended"}
    assert all("recertify" in str(why) for _, why in state.values()), state
    with pytest.raises(Conflict) as err:
        services.products.transition(MODEL, "launched", actor="test")
    assert err.value.code == "guard_failed" and "recertify" in err.value.message
    listing = services.ecosystem.listings.list(model=MODEL)[0]
    with pytest.raises(Conflict) as err:  # back on sale only through the gate
        services.ecosystem.listings.update(listing["id"], availability="in_stock", actor="test")
    assert err.value.code == "certification_required"
    signed_report(services)  # recertified on the new spec
    services.products.transition(MODEL, "launched", actor="test")
    back = services.ecosystem.listings.update(listing["id"], availability="in_stock", actor="test")
    assert back["availability"] == "in_stock" and back["reason"] is None


def test_a_report_is_bound_to_the_spec_version_not_only_its_document(services: Services) -> None:
    _on_sale(services)
    first = services.products.get(MODEL)
    document = load_spec("cuco.plug.v3")
    document["description"] = "v2"
    services.products.import_spec(document, model=MODEL, actor="test")
    services.products.import_spec(load_spec("cuco.plug.v3"), model=MODEL, actor="test")  # back to v1's document
    third = services.products.get(MODEL)
    assert third.spec_hash == first.spec_hash and third.spec_version == 3
    assert services.certification.passing_markets(MODEL, third.spec_hash) == frozenset()
    assert {a for a, _ in _availability(services).values()} == {"suspended"}


def test_revoked_evidence_suspends_at_once(services: Services) -> None:
    _on_sale(services)
    ce = next(e for e in services.certification.evidence.list(MODEL) if e["regime"] == "CE-RED")
    services.certification.evidence.revoke(ce["id"], reason="certificate withdrawn by the notified body")
    state = _availability(services)
    assert state["US"] == ("in_stock", None)
    assert state["DE"][0] == "suspended" and "CE-RED" in str(state["DE"][1]) and "revoked" in str(state["DE"][1])
    with pytest.raises(Conflict) as err:
        services.certification.evidence.accept(ce["id"])
    assert err.value.code == "evidence_revoked"


def test_partner_submits_evidence_only_the_brand_accepts_it(services: Services) -> None:
    _product(services)
    signed_report(services)
    record_evidence(services, MODEL, ["US"], caller=ACME)
    spec_hash = services.products.get(MODEL).spec_hash
    assert services.certification.passing_markets(MODEL, spec_hash) == frozenset()  # pending
    fcc = services.certification.evidence.list(MODEL, caller=ACME)[0]
    assert fcc["status"] == "pending" and fcc["problem"] == "awaiting the brand's acceptance"
    with pytest.raises(Forbidden):
        services.certification.evidence.accept(fcc["id"], caller=ACME)
    other = Principal(Role.PARTNER, "tok-other", partner_id="other")
    with pytest.raises(Forbidden):
        services.certification.evidence.list(MODEL, caller=other)
    with pytest.raises(Forbidden):
        record_evidence(services, MODEL, ["US"], caller=other)
    services.certification.evidence.accept(fcc["id"], caller=Principal(Role.OPERATOR, "tok-op"))
    assert services.certification.passing_markets(MODEL, spec_hash) == frozenset({"US"})


def test_evidence_is_checked_and_size_capped(services: Services) -> None:
    _product(services)
    add = services.certification.evidence.add
    base: dict[str, Any] = {"market": "DE", "regime": "CE-RED", "issuer": "Lab", "number": "1",
                            "valid_until": "2030-01-01", "file_name": "c.pdf"}
    with pytest.raises(PayloadTooLarge) as err:
        add(MODEL, **base, content=b"x" * (MAX_EVIDENCE_BYTES + 1))
    assert err.value.code == "evidence_too_large"
    for bad, code in (({"regime": "TELEC"}, "unknown_regime"), ({"market": "ZZ"}, "unknown_market"),
                      ({"valid_until": "2020-01-01"}, "invalid_evidence"), ({"issuer": ""}, "invalid_evidence")):
        with pytest.raises(Exception) as caught:
            add(MODEL, **{**base, **bad}, content=b"%PDF")
        assert getattr(caught.value, "code", None) == code, bad
    one = add(MODEL, **base, content=b"%PDF same bytes")
    two = add(MODEL, **{**base, "regime": "EN-18031"}, content=b"%PDF same bytes")
    assert one["file"]["sha256"] == two["file"]["sha256"]  # kept once, by content hash
    stored = services.settings.data_dir / "evidence" / one["file"]["sha256"][:2] / one["file"]["sha256"]
    assert stored.read_bytes() == b"%PDF same bytes"
    # the name is only what a download is called: no directories of either kind, no name that is a directory
    for sent, kept in (("../../etc/passwd", "passwd"), ("C:\\fakepath\\..\\cert.pdf", "cert.pdf")):
        assert add(MODEL, **{**base, "file_name": sent}, content=b"%PDF")["file"]["name"] == kept
    for sent in ("..", "a/..", "..\\", "."):
        with pytest.raises(InvalidInput):
            add(MODEL, **{**base, "file_name": sent}, content=b"%PDF")


def test_evidence_over_rest(services: Services) -> None:
    _product(services)
    op = {"Authorization": f"Bearer {services.tokens.create(role='operator')['token']}"}
    acme = {"Authorization": f"Bearer {services.tokens.create(role='partner', partner_id='acme')['token']}"}
    other = {"Authorization": f"Bearer {services.tokens.create(role='partner', partner_id='other')['token']}"}
    form = {"market": "DE", "regime": "CE-RED", "issuer": "TÜV Lab", "number": "RED-42", "valid_until": "2030-06-30",
            "scope": "radio"}
    pdf = ("ce.pdf", b"%PDF-1.4 the certificate", "application/pdf")
    with TestClient(create_app(services)) as c:
        r = c.post(f"/api/v1/products/{MODEL}/evidence", data=form, files={"file": pdf}, headers=acme)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "pending" and body["file"]["size"] == len(pdf[1])
        assert body["added_by"].startswith("partner:") and body["decided_by"] is None
        assert c.post(f"/api/v1/products/{MODEL}/evidence", data=form, files={"file": pdf},
                      headers=other).status_code == 403
        assert c.post(f"/api/v1/products/{MODEL}/evidence/{body['id']}/accept", headers=acme).status_code == 403
        r = c.post(f"/api/v1/products/{MODEL}/evidence/{body['id']}/accept", headers=op)
        assert r.status_code == 200 and r.json()["valid"] is True
        listed = c.get(f"/api/v1/products/{MODEL}/evidence", headers=acme).json()
        assert [e["id"] for e in listed["evidence"]] == [body["id"]]
        assert "EU-ROHS" in listed["closed_markets"]["DE"] and "no valid certification report" in \
            listed["closed_markets"]["DE"]
        assert c.get(f"/api/v1/products/{MODEL}/evidence", headers=other).status_code == 403
        r = c.get(f"/api/v1/products/{MODEL}/evidence/{body['id']}/file", headers=acme)
        assert r.status_code == 200 and r.content == pdf[1]
        r = c.post(f"/api/v1/products/{MODEL}/evidence", data={**form, "valid_until": "31.12.2030"},
                   files={"file": pdf}, headers=op)
        assert r.status_code == 422
        r = c.post(f"/api/v1/products/{MODEL}/evidence/{body['id']}/revoke", json={"reason": "forged"}, headers=op)
        assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["problem"] == "revoked"
        # a lab report is bigger than the API's usual body cap; the evidence route has the file's own cap
        big = ("lab-report.pdf", b"%PDF" + b"0" * (3 * 1024 * 1024), "application/pdf")
        r = c.post(f"/api/v1/products/{MODEL}/evidence", data=form, files={"file": big}, headers=op)
        assert r.status_code == 201 and r.json()["file"]["size"] == len(big[1])
        huge = ("huge.pdf", b"0" * (MAX_EVIDENCE_BYTES + 1), "application/pdf")
        r = c.post(f"/api/v1/products/{MODEL}/evidence", data=form, files={"file": huge}, headers=op)
        assert r.status_code == 413
        assert c.post(f"/api/v1/products/{MODEL}/spec:check", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                      headers={**op, "Content-Type": "application/json"}).status_code == 413  # others keep 1 MiB


def test_console_product_page_shows_evidence_and_suspended_listings(services: Services) -> None:
    _on_sale(services)
    ce = next(e for e in services.certification.evidence.list(MODEL) if e["regime"] == "CE-RED")
    services.certification.evidence.revoke(ce["id"], reason="withdrawn")
    token = str(services.tokens.create(role="operator")["token"])
    with TestClient(create_app(services)) as c:
        c.cookies.set(COOKIE, token)
        page = c.get(f"/console/products/{MODEL}")
    assert page.status_code == 200, page.text[:300]
    html = page.text
    assert "Certification evidence" in html and "CE-RED-DE-0001" in html and "withdrawn" in html
    assert "Suspended" in html and "no valid evidence for CE-RED (CE-RED-DE-0001: revoked)" in html


def test_evidence_cli(tmp_path: Path) -> None:
    data = tmp_path / "d"
    services = bootstrap(Settings(data_dir=data))
    _product(services)
    services.close()
    cert = tmp_path / "red.pdf"
    cert.write_bytes(b"%PDF-1.4 red")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecohub.cli", *args, "--data-dir", str(data)],
                              capture_output=True, text=True, timeout=120)

    out = run("evidence", "add", "--model", MODEL, "--market", "DE", "--regime", "CE-RED", "--issuer", "TÜV Lab",
              "--number", "RED-1", "--valid-until", "2030-12-31", str(cert), "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    added = json.loads(out.stdout)
    assert added["status"] == "accepted" and added["file"]["name"] == "red.pdf"
    listed = json.loads(run("evidence", "list", "--model", MODEL, "--json").stdout)
    assert [(e["regime"], e["valid"]) for e in listed] == [("CE-RED", True)]
    out = run("evidence", "add", "--model", MODEL, "--market", "DE", "--regime", "CCC", "--issuer", "x", "--number",
              "1", "--valid-until", "2030-12-31", str(cert))
    assert out.returncode != 0 and "CCC" in out.stdout + out.stderr
    assert run("evidence", "revoke", str(added["id"]), "--reason", "forged").returncode == 0
    assert json.loads(run("evidence", "list", "--model", MODEL, "--json").stdout)[0]["status"] == "revoked"


async def test_expired_evidence_suspends_listings_in_the_hubs_maintenance_round(tmp_path: Path) -> None:
    """Nothing happens when a certificate runs out: the hub's periodic job must notice, and take the listing off
    sale. Time is driven by moving the certificate's last valid day into the past."""
    services = bootstrap(Settings(data_dir=tmp_path / "data", telemetry={"job_interval_s": 0.2}))
    try:
        _on_sale(services)
        async with running_hub(services, app_factory=create_app, http_port=free_port(),
                               mqtt_port=free_port()) as hub:
            assert _availability(hub)["DE"] == ("in_stock", None)
            with hub.dbs.global_session() as s:
                s.execute(update(CertificationEvidence).where(CertificationEvidence.regime == "EU-ROHS")
                          .values(valid_until=date.today() - timedelta(days=1)))

            def suspended() -> dict[str, Any]:
                return {m: v for m, v in _availability(hub).items() if v[0] == "suspended"}

            gone = await eventually(suspended, timeout=20)
            assert set(gone) == {"DE"} and "EU-ROHS" in str(gone["DE"][1]) and "expired on" in str(gone["DE"][1])
            token = hub.tokens.create(role="operator")["token"]
            async with httpx.AsyncClient(base_url=str(hub.runtime.http_url),
                                         headers={"Authorization": f"Bearer {token}"}) as api:
                rows = (await api.get("/api/v1/listings", params={"model": MODEL})).json()
            de = next(x for x in rows if x["market"] == "DE")
            assert de["availability"] == "suspended" and "expired on" in de["reason"]
            with pytest.raises(Conflict):
                hub.products.transition(MODEL, "launched", actor="test")
    finally:
        services.close()



def test_console_accepts_and_revokes_evidence(services: Services) -> None:
    """The brand decides on evidence from the product page: a partner's pending submission is accepted, a piece of
    evidence is revoked with a reason (its listing leaves sale); a cross-site form post is refused."""
    _on_sale(services)
    ce = next(e for e in services.certification.evidence.list(MODEL) if e["regime"] == "CE-RED")
    pending = services.certification.evidence.add(
        MODEL, market="DE", regime="EU-ROHS", issuer="Partner Lab", number="ROHS-P-7", valid_until="2031-06-30",
        file_name="rohs.pdf", content=b"%PDF-1.4 partner rohs", caller=ACME)
    assert pending["status"] == "pending"
    token = str(services.tokens.create(role="operator")["token"])
    base = f"/console/products/{MODEL}/evidence"
    with TestClient(create_app(services)) as c:
        c.cookies.set(COOKIE, token)
        html = c.get(f"/console/products/{MODEL}").text
        assert f'action="{base}/{pending["id"]}/accept"' in html and f'action="{base}/{ce["id"]}/revoke"' in html
        assert f'action="{base}/{ce["id"]}/accept"' not in html  # accepted already: only revocable
        r = c.post(f"{base}/{pending['id']}/accept", headers={"Origin": "https://evil.example"},
                   follow_redirects=False)
        assert r.status_code == 403
        assert services.certification.evidence.get(pending["id"])["status"] == "pending"
        r = c.post(f"{base}/{pending['id']}/accept", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/console/products/{MODEL}#ev-h"
        accepted = services.certification.evidence.get(pending["id"])
        assert accepted["status"] == "accepted" and accepted["decided_by"].startswith("operator:")
        assert accepted["valid"] and accepted["added_by"] != accepted["decided_by"]
        r = c.post(f"{base}/{ce['id']}/revoke", data={"reason": "  "}, follow_redirects=False)
        assert r.status_code == 422 and "reason" in r.text
        assert services.certification.evidence.get(ce["id"])["status"] == "accepted"
        r = c.post(f"{base}/{ce['id']}/revoke", data={"reason": "withdrawn by TÜV"}, follow_redirects=False)
        assert r.status_code == 303
        assert services.certification.evidence.get(ce["id"])["reason"] == "withdrawn by TÜV"
        assert _availability(services)["DE"][0] == "suspended"
        html = c.get(f"/console/products/{MODEL}").text
        assert "withdrawn by TÜV" in html and f'action="{base}/{ce["id"]}/revoke"' not in html
        c.cookies.set("ecohub_lang", "de")
        assert "Widerrufen" in c.get(f"/console/products/{MODEL}").text  # the buttons speak the console's languages
        assert c.post(f"{base}/{ce['id']}/revoke", data={"reason": "again"}).status_code == 409
        assert c.post(f"{base}/{ce['id']}/approve").status_code == 404
    partner = str(services.tokens.create(role="partner", partner_id="acme")["token"])
    with TestClient(create_app(services)) as c:
        c.cookies.set(COOKIE, partner)
        r = c.post(f"{base}/{pending['id']}/revoke", data={"reason": "mine"}, follow_redirects=False)
        assert r.status_code == 403, r.status_code  # the partner's console session may not decide
        assert services.certification.evidence.get(pending["id"])["status"] == "accepted"
