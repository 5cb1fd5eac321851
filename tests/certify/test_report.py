"""Reports: Ed25519 signature round trip, tampering, expiry, the brand key file, and the listing gate's rules."""

from __future__ import annotations

import copy
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from ecohub.bootstrap import Services
from ecohub.certify import keys
from ecohub.certify.domain import CHECKS, Declaration, check_privacy, market_verdicts
from ecohub.certify.models import CertificationReport
from ecohub.certify.report import build, render_html, sign, verify
from ecohub.errors import InvalidInput
from ecohub.spec import compile_spec, parse_spec
from tests.certify.conftest import DECLARATION, record_evidence
from tests.conftest import load_spec

MODEL = "cuco.plug.v3"


def _doc(spec_hash: str, *, failing: tuple[str, ...] = (), issued: datetime | None = None) -> dict[str, Any]:
    """A report as the runner builds it, every check passing except `failing`."""
    checks = [{"id": c.id, "title": c.title, "category": c.category, "status": "fail" if c.id in failing else "pass",
               "reason": "", "duration_ms": 1, "evidence": {}} for c in CHECKS]
    statuses = {c["id"]: c["status"] for c in checks}
    from ecohub.certify.domain import Status

    markets = market_verdicts({k: Status(v) for k, v in statuses.items()}, ["DE", "US"])
    now = issued or datetime.now(UTC)
    return build(report_id=str(uuid.uuid4()), model=MODEL, spec_hash=spec_hash, spec_version=1, checks=checks,
                 markets=markets, setup={}, declaration=DECLARATION, started_at=now, finished_at=now)


@pytest.fixture
def spec_hash(services: Services, plug_model: str) -> str:
    return services.products.compiled(plug_model).hash


def test_brand_key_is_created_once_private_and_exportable(services: Services) -> None:
    pem = services.certification.public_key_pem()
    path = keys.key_path(services.settings.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert services.certification.public_key_pem() == pem  # not regenerated
    assert keys.load_public(pem.encode()).public_bytes_raw() == keys.brand_key(
        services.settings.data_dir).public_key().public_bytes_raw()


def test_signed_report_verifies_and_tampering_is_detected(services: Services, spec_hash: str) -> None:
    doc = sign(_doc(spec_hash), services.certification.signing_key())
    assert services.certification.verify(doc).valid
    assert verify(json.loads(json.dumps(doc)), trusted=None).signature_ok  # survives a JSON round trip
    tampered = copy.deepcopy(doc)
    tampered["checks"][0]["status"] = "fail"
    verdict = services.certification.verify(tampered)
    assert not verdict.valid and not verdict.signature_ok
    other = sign(_doc(spec_hash), keys.Ed25519PrivateKey.generate())
    verdict = services.certification.verify(other)
    assert verdict.signature_ok and not verdict.trusted and not verdict.valid


def test_expired_and_stale_spec_reports_are_invalid(services: Services, spec_hash: str) -> None:
    old = sign(_doc(spec_hash, issued=datetime.now(UTC) - timedelta(days=400)), services.certification.signing_key())
    assert verify(old, trusted=keys.brand_public_key(services.settings.data_dir)).expired
    fresh = sign(_doc(spec_hash), services.certification.signing_key())
    verdict = verify(fresh, trusted=keys.brand_public_key(services.settings.data_dir), current_spec_hash="0" * 64)
    assert verdict.spec_current is False and not verdict.valid


def test_gate_counts_only_valid_passing_reports_for_the_current_spec(services: Services, spec_hash: str) -> None:
    cert = services.certification
    assert cert.passing_markets(MODEL, spec_hash) == frozenset()
    record_evidence(services, MODEL, ["DE", "US"])
    cert.record(sign(_doc(spec_hash, failing=("declaration.privacy",)), cert.signing_key()))
    # privacy is required by the EU profiles (DE) but not by the US one
    assert {"US"} <= cert.passing_markets(MODEL, spec_hash) and "DE" not in cert.passing_markets(MODEL, spec_hash)
    good = sign(_doc(spec_hash), cert.signing_key())
    cert.record(good)
    assert {"DE", "US"} <= cert.passing_markets(MODEL, spec_hash)
    assert services.products.passed_markets(MODEL, spec_hash) == cert.passing_markets(MODEL, spec_hash)
    # a spec change invalidates every report: the new hash has none
    document = load_spec(MODEL)
    document["description"] = "a changed spec"
    new_hash = services.products.import_spec(document, model=MODEL, actor="test").spec_hash
    assert new_hash != spec_hash
    assert cert.passing_markets(MODEL, new_hash) == frozenset()
    assert services.products.passed_markets(MODEL, new_hash) == frozenset()


def test_a_report_edited_in_the_database_stops_counting(services: Services, spec_hash: str) -> None:
    cert = services.certification
    doc = sign(_doc(spec_hash, failing=("connect.auth",)), cert.signing_key())
    cert.record(doc)
    assert "US" not in cert.passing_markets(MODEL, spec_hash)
    forged = copy.deepcopy(doc)
    next(c for c in forged["checks"] if c["id"] == "connect.auth")["status"] = "pass"
    with services.dbs.global_session() as s:
        s.execute(update(CertificationReport).where(CertificationReport.report_id == doc["report_id"])
                  .values(document=forged))
    assert cert.passing_markets(MODEL, spec_hash) == frozenset()


def test_only_brand_signed_reports_are_recorded(services: Services, spec_hash: str) -> None:
    with pytest.raises(InvalidInput) as err:
        services.certification.record(sign(_doc(spec_hash), keys.Ed25519PrivateKey.generate()))
    assert err.value.code == "untrusted_report"


def test_html_shows_every_check_and_the_verdict(spec_hash: str, services: Services) -> None:
    page = render_html(sign(_doc(spec_hash, failing=("events.arguments",)), services.certification.signing_key()))
    assert all(c.id in page for c in CHECKS)
    assert "FAILED" in page and spec_hash in page


def test_privacy_declaration_must_match_the_spec() -> None:
    spec = compile_spec(parse_spec(load_spec(MODEL)))
    assert check_privacy(Declaration.from_document(DECLARATION), spec)[0]
    ok, reason = check_privacy(Declaration.from_document({"privacy": {"personal_data": [
        {"property": "99.1", "purpose": "x"}, {"property": "2.1"}]}}), spec)
    assert not ok and "99.1 is not a property" in reason and "2.1): no purpose" in reason
    ok, reason = check_privacy(Declaration(), spec)
    assert not ok and "--declaration" in reason
