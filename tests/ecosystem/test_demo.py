"""The demo generator: ~120 partners, >= 2,000 products, ~90 markets; deterministic, fast and idempotent."""

from __future__ import annotations

from ecohub.bootstrap import Services
from ecohub.demo.generate import brand_stake_is_minority
from ecohub.demo.load import DEMO_MODELS, build_demo_data, load_demo


def test_generator_is_deterministic_and_big_enough(eco: Services) -> None:
    first, second = build_demo_data(eco), build_demo_data(eco)
    assert first == second
    assert build_demo_data(eco, seed=1).products != first.products
    assert len(first.products) >= 2000
    assert 110 <= len(first.partners) <= 130
    assert len({p["category"] for p in first.products}) >= 30
    assert len({p["stage"] for p in first.products}) == 8
    assert brand_stake_is_minority(first) and first.overrides
    assert len({x["market"] for x in first.listings}) >= 80
    past_defined = [p for p in first.products if p["stage"] not in ("concept", "defined")]
    assert all(p["target_price"] and p["forecast_volume"] > 0 and p["category"] != "uncategorised"
               for p in past_defined)  # the definition is complete before development starts
    designed = {d["model"] for d in first.designs if d["status"] == "approved"}
    assert {p["model"] for p in first.products if p["stage"] in ("approved", "launched", "discontinued")} <= designed


def test_demo_loads_and_a_second_run_reuses_it(eco: Services) -> None:
    state = load_demo(eco, devices=2)
    assert set(DEMO_MODELS) <= {p.model for p in eco.products.list(limit=5000)}
    products = len(eco.products.list(limit=5000))
    assert products >= 2006
    assert len(eco.ecosystem.partners.list()) == 120
    assert len(eco.ecosystem.markets.list()) >= 85
    assert eco.ecosystem.supply.dependency()[0]["partners"] > 10
    assert eco.ecosystem.supply.demand(limit=1)[0]["annual_units"] > 0
    kpis = eco.ecosystem.kpis.all()
    assert kpis["products_by_stage"]["launched"] > 500 and kpis["portfolio_history"]
    assert sum(kpis["devices_by_partner"].values()) == 2
    pricing = kpis["pricing_by_market"]
    assert len(pricing) >= 80 and all(m["outside_policy"] == 0 and m["unknown_cost"] == 0 for m in pricing.values())
    assert all(float(m["min_margin"]) >= 0 and float(m["max_margin"]) <= 0.05 for m in pricing.values())
    again = load_demo(eco, devices=2)
    assert again.token == state.token and again.fleet == state.fleet
    assert len(eco.products.list(limit=5000)) == products
    assert len(eco.ecosystem.partners.list()) == 120
