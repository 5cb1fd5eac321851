"""The demo's real products go on sale the way every product does: a certification report, evidence, the gate.

The reports are real runs of the suite against the SDK simulator of each product, recorded by
`scripts/demo_reports.py` (a run takes seconds, six would slow every demo load). At load they are signed with the
data dir's brand key and recorded; the evidence is labelled as demo evidence; then the products are approved, launched
and listed through the same services and guards as any other, so the demo lists nothing the gate would not open.
A recorded report for another spec, or one that expired, is not used: given an app factory (the CLI's), the demo
runs the real suite again for that product at load (`record_report`, a hub on a temporary data dir), otherwise the
product stays at certification."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from ecohub.bootstrap import Services, bootstrap
from ecohub.certify.context import Timing
from ecohub.certify.devproc import sdk_device_cmd
from ecohub.certify.domain import CHECKS, Declaration, evidence_required
from ecohub.certify.report import sign
from ecohub.certify.runner import RunOptions, run_suite
from ecohub.certify.target import HubUnderTest, MqttAccess
from ecohub.demo.generate import local_price
from ecohub.ecosystem.domain import Stage
from ecohub.errors import Conflict, EcohubError
from ecohub.hub import AppFactory, free_port, running_hub
from ecohub.settings import Settings

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
RERUN_NOTE = ("a real run of the suite against the SDK simulator, made when the demo loaded (the recorded report "
              "had expired or did not fit the spec) and signed with this data dir's brand key")
Rerun = Callable[[str], "dict[str, Any] | None"]  # model -> a report of a real run made now (None: it failed)


def recorded_report(model: str) -> dict[str, Any] | None:
    """The recorded, unsigned report of a demo product (None when none was recorded)."""
    path = resources.files("ecohub.demo").joinpath(f"reports/{model}.json")
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


async def record_report(model: str, spec: dict[str, Any], markets: list[str], root: Path, *, category: str,
                        app_factory: AppFactory) -> dict[str, Any]:
    """One real run of the suite against the product's SDK simulator on a fresh hub under `root`; the unsigned
    report (the same run as `ecohub certify run --fast`)."""
    services = bootstrap(Settings(data_dir=root / model))
    try:
        # a throwaway store: the definition only has to be complete for the product to reach certification
        services.products.import_spec(spec, model=model, actor="demo-reports", category=category,
                                      target_markets=markets, target_price="1", forecast_volume=1)
        async with running_hub(services, app_factory=app_factory, http_port=free_port(),
                               mqtt_port=free_port()) as hub:
            assert hub.runtime.http_url and hub.runtime.mqtt_port
            token = str(hub.tokens.create(role="operator", label="demo reports")["token"])
            target = HubUnderTest(api_url=hub.runtime.http_url, token=token, origin="started",
                                  mqtt=MqttAccess(host="127.0.0.1", port=hub.runtime.mqtt_port,
                                                  password=hub.service_password),
                                  max_payload=hub.settings.mqtt.max_payload)
            options = RunOptions(model=model, markets=markets, device_cmd=sdk_device_cmd(),
                                 declaration=Declaration.from_document(DEMO_DECLARATION), timing=Timing.fast(),
                                 market_table=hub.certification.market_table())
            return await run_suite(target, options)
    finally:
        services.close()


def fresh_report(model: str, spec: dict[str, Any], markets: list[str], *, category: str,
                 app_factory: AppFactory) -> dict[str, Any] | None:
    """`record_report` now, on a temporary data dir, in a thread of its own (the caller may be inside an event
    loop); None when the run could not be made."""
    out: list[dict[str, Any]] = []

    def run() -> None:
        with tempfile.TemporaryDirectory(prefix="ecohub-demo-run-") as tmp:
            out.append(asyncio.run(record_report(model, spec, markets, Path(tmp), category=category,
                                                  app_factory=app_factory)))

    worker = threading.Thread(target=run, name=f"demo-certify-{model}")
    worker.start()
    worker.join()
    return out[0] if out else None


def _usable(doc: dict[str, Any] | None, spec_hash: str) -> bool:
    """A report counts for the demo when it is for this spec, unexpired, and made by today's suite (a report of an
    older suite lacks the checks added since: it would open nothing that requires them)."""
    return (doc is not None and doc.get("spec_hash") == spec_hash
            and datetime.fromisoformat(doc["expires_at"]) > datetime.now(UTC)
            and {c.id for c in CHECKS} <= {c.get("id") for c in doc.get("checks", [])})


def certify_and_list(services: Services, model: str, markets: list[str], *, rerun: Rerun | None = None,
                     report: dict[str, Any] | None = None) -> list[str]:
    """Record the product's recorded report (`report`, else the one shipped with the demo) and demo evidence,
    approve, launch and list it where the gate opens; returns the markets it is listed in. A recorded report that
    expired or does not fit the product's current spec is replaced by a real run made now (`rerun`); without one
    the product stays at certification ([])."""
    product = services.products.get(model)
    if Stage(product.stage) != Stage.CERTIFICATION:
        return []  # already through (a second load), or moved by someone: leave it
    doc = report if report is not None else recorded_report(model)
    note = RECORDED_NOTE
    if not _usable(doc, product.spec_hash):
        doc, note = (rerun(model) if rerun is not None else None), RERUN_NOTE
        if doc is None or not _usable(doc, product.spec_hash):
            return []
    assert doc is not None
    cert = services.certification
    doc = {**doc, "setup": {**(doc.get("setup") or {}), "recorded": note}}
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
