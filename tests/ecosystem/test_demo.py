"""The demo generator: ~120 partners, >= 2,000 products, ~90 markets; deterministic, fast and idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from ecohub.demo.certified import RERUN_NOTE, certify_and_list, fresh_report, recorded_report
from ecohub.demo.generate import brand_stake_is_minority
from ecohub.demo.load import DEMO_MODELS, DEMO_TARGETS, build_demo_data, demo_spec, load_demo, load_registry
from tests.helpers import approve_design, price_for_sale


def test_generator_is_deterministic_and_big_enough(eco: Services) -> None:
    first, second = build_demo_data(eco), build_demo_data(eco)
    assert first == second
    assert build_demo_data(eco, seed=1).products != first.products
    assert len(first.products) >= 2000
    assert 110 <= len(first.partners) <= 130
    assert len({p["category"] for p in first.products}) >= 30
    assert len({p["stage"] for p in first.products}) == 6
    assert not {p["stage"] for p in first.products} & {"approved", "launched"}  # no report, no sale
    assert brand_stake_is_minority(first) and first.overrides
    assert first.listings == []
    past_defined = [p for p in first.products if p["stage"] not in ("concept", "defined")]
    assert all(p["target_price"] and p["forecast_volume"] > 0 and p["category"] != "uncategorised"
               for p in past_defined)  # the definition is complete before development starts
    designed = {d["model"] for d in first.designs if d["status"] == "approved"}
    assert {p["model"] for p in first.products if p["stage"] in ("approved", "launched", "discontinued")} <= designed


def test_demo_loads_and_a_second_run_reuses_it(eco: Services) -> None:
    state = load_demo(eco, devices=2, app_factory=create_app)
    assert set(DEMO_MODELS) <= {p.model for p in eco.products.list(limit=5000)}
    products = len(eco.products.list(limit=5000))
    assert products >= 2006
    assert len(eco.ecosystem.partners.list()) == 120
    assert len(eco.ecosystem.markets.list()) >= 85
    assert eco.ecosystem.supply.dependency()[0]["partners"] > 10
    assert eco.ecosystem.supply.demand(limit=1)[0]["annual_units"] > 0
    kpis = eco.ecosystem.kpis.all()
    assert kpis["products_by_stage"]["launched"] == len(DEMO_MODELS) and kpis["portfolio_history"]
    assert kpis["markets_per_product"]["listed_products"] == len(DEMO_MODELS)
    assert sum(kpis["devices_by_partner"].values()) == 2
    pricing = kpis["pricing_by_market"]
    assert set(pricing) == set(DEMO_TARGETS)
    assert all(m["outside_policy"] == 0 and m["unknown_cost"] == 0 for m in pricing.values())
    assert all(float(m["min_margin"]) >= 0 and float(m["max_margin"]) <= 0.05 for m in pricing.values())
    again = load_demo(eco, devices=2, app_factory=create_app)
    assert again.token == state.token and again.fleet == state.fleet
    assert len(eco.products.list(limit=5000)) == products
    assert len(eco.ecosystem.partners.list()) == 120


def test_demo_lists_nothing_without_a_valid_report_and_evidence(eco: Services) -> None:
    """The attack: the demo used to hold 11,869 listings of products that had no certification report at all."""
    load_demo(eco, devices=0, app_factory=create_app)  # recorded reports that expired: run again now
    listings = eco.ecosystem.listings.list(limit=100_000)
    assert {x["model"] for x in listings} == set(DEMO_MODELS)
    for x in listings:
        product = eco.products.get(x["model"])
        assert x["availability"] == "in_stock", x
        assert x["market"] in eco.certification.passing_markets(x["model"], product.spec_hash)
        reports = eco.certification.list(x["model"])
        assert reports, f"{x['model']} is listed without a report"
        doc = eco.certification.get(reports[0]["report_id"])
        verdict = eco.certification.verify(doc)
        assert verdict.valid, verdict.problems
        assert doc["spec_hash"] == product.spec_hash and doc["spec_version"] == product.spec_version
        assert {c["status"] for c in doc["checks"]} <= {"pass", "na"}  # a real run: every check ran
        assert doc["setup"]["device"] and doc["setup"]["units"]
        evidence = [e for e in eco.certification.evidence.list(x["model"]) if e["market"] == x["market"]]
        assert evidence and all(e["valid"] for e in evidence)
    # nothing generated went past certification: no approved or launched product outside the certified six
    for stage in ("approved", "launched"):
        assert {p.model for p in eco.products.list(stage=stage, limit=5000)} <= set(DEMO_MODELS)


def test_an_expired_recorded_report_is_replaced_by_a_real_run_at_load(eco: Services) -> None:
    """The time bomb: the recorded reports expire a year after recording. A recording older than that (here the
    shipped one as it will stand then: its expiry passed) is not used; the demo runs the real suite again now."""
    model = "cuco.plug.v3"
    load_registry(eco)
    eco.products.import_spec(demo_spec(model), model=model, actor="demo", category=DEMO_MODELS[model],
                             target_markets=DEMO_TARGETS, target_price="14.99", forecast_volume=10_000)
    approve_design(eco, model)
    price_for_sale(eco, model, bom="2.69", other_cost_rate="0.40")
    old = recorded_report(model)
    assert old is not None
    expired = {**old, "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    # without a way to run the suite the product stays at certification: nothing unproven goes on sale
    assert certify_and_list(eco, model, DEMO_TARGETS, report=expired) == []
    assert eco.products.get(model).stage == "certification" and not eco.certification.list(model)

    def rerun(m: str) -> dict[str, object] | None:
        return fresh_report(m, demo_spec(m), DEMO_TARGETS, category=DEMO_MODELS[m], app_factory=create_app)

    listed = certify_and_list(eco, model, DEMO_TARGETS, rerun=rerun, report=expired)  # type: ignore[arg-type]
    assert listed and set(listed) <= set(DEMO_TARGETS)
    assert eco.products.get(model).stage == "launched"
    reports = eco.certification.list(model)
    assert len(reports) == 1 and reports[0]["report_id"] != old["report_id"]
    doc = eco.certification.get(reports[0]["report_id"])
    assert eco.certification.verify(doc).valid and doc["setup"]["recorded"] == RERUN_NOTE
    assert datetime.fromisoformat(doc["issued_at"]) > datetime.fromisoformat(old["issued_at"])
    assert {c["status"] for c in doc["checks"]} <= {"pass", "na"} and doc["setup"]["units"]
