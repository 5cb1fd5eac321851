"""The demo's real products go on sale the way every product does: a certification report, evidence, the gate.

The reports are real runs of the suite against the SDK simulator of each product, recorded by
`scripts/demo_reports.py` (a run takes seconds, six would slow every demo load). At load they are signed with the
data dir's brand key and recorded; the evidence is labelled as demo evidence; then the products are approved, launched
and listed through the same services and guards as any other, so the demo lists nothing the gate would not open.
A recorded report for another spec, or one that expired, is not used: that product stays at certification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

from ecohub.bootstrap import Services
from ecohub.certify.domain import evidence_required
from ecohub.certify.report import sign
from ecohub.demo.generate import local_price
from ecohub.ecosystem.domain import Stage
from ecohub.errors import Conflict, EcohubError

# What the demo's partners declare for their products (not testable on the wire; the declaration checks judge it).
DEMO_DECLARATION: dict[str, Any] = {
    "vulnerability_disclosure": {"contact": "security@ecohub.example"},
    "support_period": {"end": "2031-12-31"},
    "secure_update": {"mechanism": "signed OTA over HTTPS", "signed": True},
    "privacy": {"personal_data": []},
    "limits": {"max_messages_per_s": 20, "max_payload_bytes": 8192},
}
DEMO_ISSUER = "ecohub demo lab (demo evidence, not a real certificate)"
EVIDENCE_YEARS = 3
RECORDED_NOTE = ("a real run of the suite against the SDK simulator, recorded by scripts/demo_reports.py and signed "
                 "with this data dir's brand key when the demo loaded")


def recorded_report(model: str) -> dict[str, Any] | None:
    """The recorded, unsigned report of a demo product (None when none was recorded)."""
    path = resources.files("ecohub.demo").joinpath(f"reports/{model}.json")
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def certify_and_list(services: Services, model: str, markets: list[str]) -> list[str]:
    """Record the product's recorded report and demo evidence, approve, launch and list it where the gate opens;
    returns the markets it is listed in ([] when the recorded report does not fit the product's current spec)."""
    product = services.products.get(model)
    if Stage(product.stage) != Stage.CERTIFICATION:
        return []  # already through (a second load), or moved by someone: leave it
    doc = recorded_report(model)
    if doc is None or doc.get("spec_hash") != product.spec_hash:
        return []
    if datetime.fromisoformat(doc["expires_at"]) <= datetime.now(UTC):
        return []
    cert = services.certification
    doc = {**doc, "setup": {**(doc.get("setup") or {}), "recorded": RECORDED_NOTE}}
    cert.record(sign(doc, cert.signing_key()))
    table = cert.market_table()
    until = (datetime.now(UTC) + timedelta(days=365 * EVIDENCE_YEARS)).date()
    for market in markets:
        for regime in evidence_required(table[market]):
            body = f"ecohub demo evidence: {regime} for {model} in {market}. Not a real certificate.\n".encode()
            cert.evidence.add(model, market=market, regime=regime, issuer=DEMO_ISSUER,
                              number=f"DEMO-{regime}-{market}-{model}"[:200], valid_until=until, scope="demo",
                              file_name=f"{regime}-{market}.txt", content=body, actor="demo")
    open_markets = services.products.passed_markets(model, product.spec_hash)
    try:
        services.products.transition(model, Stage.APPROVED, actor="demo", reason="demo: recorded certification run")
        services.products.transition(model, Stage.LAUNCHED, actor="demo", reason="demo launch")
    except Conflict:
        return []
    listed = []
    for market in markets:
        if market not in open_markets:
            continue
        currency = services.ecosystem.markets.get(market)["currency"]
        try:
            price = local_price(Decimal(str(product.target_price)), currency)
            services.ecosystem.listings.add(model, market, price=price, actor="demo")
        except EcohubError:
            continue
        listed.append(market)
    return listed
