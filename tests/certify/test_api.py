"""REST: a product's reports (per-market verdicts, signature, validity), one report as JSON and HTML; who may see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from ecohub.certify.domain import CHECKS, Status, market_verdicts
from ecohub.certify.report import build, sign
from tests.certify.conftest import DECLARATION, record_evidence
from tests.conftest import load_spec
from tests.helpers import DEFINITION

MODEL = "acme.plug.v1"


def _report(services: Services, *, failing: tuple[str, ...] = (), spec_hash: str | None = None) -> dict[str, Any]:
    """A brand-signed report for MODEL, recorded; every check passes except `failing`."""
    checks = [{"id": c.id, "title": c.title, "category": c.category, "status": "fail" if c.id in failing else "pass",
               "reason": "", "duration_ms": 1, "evidence": {}} for c in CHECKS]
    markets = market_verdicts({c["id"]: Status(c["status"]) for c in checks}, ["DE", "US"])
    now = datetime.now(UTC)
    doc = sign(build(report_id=str(uuid.uuid4()), model=MODEL,
                     spec_hash=spec_hash or services.products.compiled(MODEL).hash, spec_version=1, checks=checks,
                     markets=markets, setup={}, declaration=DECLARATION, started_at=now, finished_at=now),
               services.certification.signing_key())
    services.certification.record(doc)
    return doc


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    services.products.import_spec(load_spec("cuco.plug.v3"), model=MODEL, actor="test", partner_id="acme", **DEFINITION)
    with TestClient(create_app(services)) as c:
        yield c


def _as(services: Services, role: str, partner_id: str | None = None) -> dict[str, str]:
    token = services.tokens.create(role=role, partner_id=partner_id)["token"]
    return {"Authorization": f"Bearer {token}"}


def test_product_reports_list_verdicts_per_market_and_validity(client: TestClient, services: Services) -> None:
    record_evidence(services, MODEL, ["DE", "US"])
    good = _report(services)
    rate_fails = _report(services, failing=("limits.message_rate",))
    stale = _report(services, spec_hash="0" * 64)  # for another spec: signed, but no longer counts
    r = client.get(f"/api/v1/products/{MODEL}/certification", headers=_as(services, "operator"))
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {rep["report_id"]: rep for rep in body["reports"]}
    assert set(by_id) == {good["report_id"], rate_fails["report_id"], stale["report_id"]}
    assert by_id[good["report_id"]]["markets"] == {"DE": "pass", "US": "pass"}
    assert by_id[good["report_id"]]["valid"] is True and by_id[good["report_id"]]["signature_valid"] is True
    assert by_id[good["report_id"]]["created"] == good["issued_at"]
    assert by_id[good["report_id"]]["spec_hash"] == body["spec_hash"]
    assert "fail" in by_id[rate_fails["report_id"]]["markets"].values()
    assert by_id[stale["report_id"]]["signature_valid"] is True
    assert by_id[stale["report_id"]]["valid"] is False and by_id[stale["report_id"]]["spec_current"] is False
    assert {"DE", "US"} <= set(body["passing_markets"])


def test_one_report_as_signed_json_and_as_html(client: TestClient, services: Services) -> None:
    doc = _report(services)
    partner = _as(services, "partner", "acme")
    r = client.get(f"/api/v1/certification/reports/{doc['report_id']}", headers=partner)
    assert r.status_code == 200, r.text
    assert r.json() == doc
    assert services.certification.verify(r.json()).valid  # what came over the wire still verifies
    h = client.get(f"/api/v1/certification/reports/{doc['report_id']}.html", headers=partner)
    assert h.status_code == 200 and h.headers["content-type"].startswith("text/html")
    assert doc["report_id"] in h.text and MODEL in h.text


def test_other_partners_and_users_are_refused(client: TestClient, services: Services) -> None:
    doc = _report(services)
    other = _as(services, "partner", "other")
    for url in (f"/api/v1/products/{MODEL}/certification", f"/api/v1/certification/reports/{doc['report_id']}",
                f"/api/v1/certification/reports/{doc['report_id']}.html"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers=other).status_code == 403, url
    assert client.get("/api/v1/certification/reports/nope", headers=_as(services, "operator")).status_code == 404
