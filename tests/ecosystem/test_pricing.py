"""Affordability as policy: net margin between the brand's floor and ceiling and a band around the target price per
market; a listing outside is refused with the rule it breaks, or accepted with an audited override."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from ecohub.ecosystem.pricing import Policy, check_policy, convert, evaluate, minor, net_margin, price_for_margin
from ecohub.errors import InvalidInput
from tests.helpers import approve_design, price_for_sale

MODEL = "acme.plug.v1"  # the `product` fixture: target 19.99 USD; these tests set 19.90 and a 2.69 BOM


def dec(lo: str, hi: str, places: int = 4) -> st.SearchStrategy[Decimal]:
    """Decimals in [lo, hi] with `places` decimal places."""
    return st.decimals(Decimal(lo), Decimal(hi), places=places, allow_nan=False, allow_infinity=False)


policies = st.builds(
    lambda floor, width, rate, fixed, tax, band: Policy(margin_floor=floor, margin_ceiling=floor + width,
                                                        other_cost_rate=rate, other_cost_fixed=fixed, tax_rate=tax,
                                                        band=band),
    dec("-0.2", "0.1"), dec("0.001", "0.3"), dec("0", "0.6"), dec("0", "20", 2), dec("0", "0.3"), dec("0.05", "1"),
).filter(lambda p: p.other_cost_rate + p.margin_ceiling < 1)


@given(policy=policies, bom=dec("0.01", "500", 2), margin=dec("-0.2", "0.35"))
def test_the_price_for_a_margin_earns_exactly_that_margin(policy: Policy, bom: Decimal, margin: Decimal) -> None:
    if policy.other_cost_rate + margin >= 1:
        return
    cost = bom + policy.other_cost_fixed
    price = price_for_margin(margin, cost, policy)
    assert abs(net_margin(price, cost, policy) - margin) < Decimal("1e-20")
    assert net_margin(price * Decimal("1.01"), cost, policy) > margin  # the margin grows with the price


@given(policy=policies, bom=dec("0.5", "200", 2), target=dec("1", "1000", 2),
       currency=st.sampled_from(["USD", "EUR", "JPY", "KWD", "INR"]))
def test_every_price_in_the_allowed_range_passes_and_one_step_outside_fails(
        policy: Policy, bom: Decimal, target: Decimal, currency: str) -> None:
    cost, local = convert(bom + policy.other_cost_fixed, "USD", currency), convert(target, "USD", currency)
    verdict = evaluate(local, currency=currency, target=local, cost=cost, policy=check_policy(policy))
    step = minor(currency)
    lo, hi = verdict.allowed_min, verdict.allowed_max
    if lo > hi:  # policy and target disagree: no price passes
        assert not evaluate(lo, currency=currency, target=local, cost=cost, policy=policy).ok
        return
    for price in {lo, hi, ((lo + hi) / 2).quantize(step)}:
        assert evaluate(price, currency=currency, target=local, cost=cost, policy=policy).ok, price
    above = evaluate(hi + step, currency=currency, target=local, cost=cost, policy=policy)
    assert not above.ok and {v.rule for v in above.violations} <= {"margin_ceiling", "price_band"}
    if lo - step > 0:
        below = evaluate(lo - step, currency=currency, target=local, cost=cost, policy=policy)
        assert not below.ok and {v.rule for v in below.violations} <= {"margin_floor", "price_band"}


def test_nonsense_policies_are_refused() -> None:
    for bad in (Policy(margin_floor=Decimal("0.1"), margin_ceiling=Decimal("0.05")),
                Policy(other_cost_rate=Decimal("0.96")), Policy(band=Decimal(0)), Policy(tax_rate=Decimal(1))):
        with pytest.raises(InvalidInput) as err:
            check_policy(bad)
        assert err.value.code == "invalid_policy"


@pytest.fixture
def sellable(eco: Services, product: str, passed: dict[str, set[str]]) -> str:
    """The plug at 19.90 USD with a 2.69 USD BOM, other costs set so the target earns 3 % net, approved for DE/US."""
    passed[product] = {"DE", "US"}
    eco.products.define(product, actor="op", target_price="19.90")
    approve_design(eco, product)
    price_for_sale(eco, product, bom="2.69")
    eco.products.transition(product, "approved", actor="op")
    return product


@pytest.fixture
def client(eco: Services) -> Iterator[TestClient]:
    """An operator's API client."""
    token = eco.tokens.create(role="operator", label="tests")["token"]
    with TestClient(create_app(eco), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_listing_at_9999_or_0_01_is_refused_with_the_rule_and_range(client: TestClient, sellable: str) -> None:
    r = client.post("/api/v1/listings", json={"model": sellable, "market": "US", "price": "9999"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["code"], err["rule"], err["allowed_min"], err["allowed_max"]) == (
        "price_outside_policy", "margin_ceiling", "18.71", "20.78")
    assert [v["rule"] for v in err["violations"]] == ["margin_ceiling", "price_band"]
    r = client.post("/api/v1/listings", json={"model": sellable, "market": "US", "price": "0.01"})
    assert r.status_code == 422 and r.json()["error"]["rule"] == "margin_floor"
    assert "below the floor of 0.0 %" in r.json()["error"]["message"]
    assert client.get("/api/v1/listings", params={"model": sellable}).json() == []  # nothing listed
    ok = client.post("/api/v1/listings", json={"model": sellable, "market": "US", "price": "19.90"})
    assert ok.status_code == 201
    r = client.patch(f"/api/v1/listings/{ok.json()['id']}", json={"price": "9999"})
    assert r.status_code == 422 and r.json()["error"]["rule"] == "margin_ceiling"
    assert client.get(f"/api/v1/listings/{ok.json()['id']}").json()["price"] == "19.90"
    # in DE the range is the same policy in euros (reference rates)
    quote = client.get(f"/api/v1/products/{sellable}/pricing/DE").json()
    assert (quote["currency"], quote["allowed_min"], quote["allowed_max"], quote["bom_cost"]) == (
        "EUR", "17.21", "19.12", "2.6900")


def test_an_override_is_accepted_and_audited(client: TestClient, eco: Services, sellable: str) -> None:
    r = client.post("/api/v1/listings", json={"model": sellable, "market": "DE", "price": "0.01",
                                              "price_override": "launch promotion approved by the board"})
    assert r.status_code == 201 and r.json()["price"] == "0.01"
    [entry] = eco.privacy.audit.entries(eco.settings.default_cell, subject=f"{sellable}@DE")
    assert entry["action"] == "pricing.override" and entry["actor"].startswith("operator:")
    assert entry["detail"] == {"price": "0.01", "currency": "EUR", "rules": ["margin_floor", "price_band"],
                               "reason": "launch promotion approved by the board"}
    assert eco.privacy.audit.verify(eco.settings.default_cell).ok
    [row] = client.get(f"/api/v1/products/{sellable}/pricing").json()
    assert (row["market"], row["within_policy"]) == ("DE", False)  # an override stays visible as such


def test_the_brand_sets_the_policy_and_partners_cannot(client: TestClient, eco: Services, sellable: str) -> None:
    partner = {"Authorization": f"Bearer {eco.tokens.create(role='partner', partner_id='acme')['token']}"}
    r = client.put("/api/v1/pricing/policies", json={"margin_ceiling": "0.5"}, headers=partner)
    assert r.status_code == 403
    r = client.put("/api/v1/pricing/policies", json={"margin_floor": "0.06"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_policy"  # floor above the 5 % ceiling
    assert client.get("/api/v1/pricing/policies").json()["margin_ceiling"] == "0.05"
    r = client.put("/api/v1/pricing/policies", json={"model": sellable, "market": "US", "margin_ceiling": "0.08"})
    assert r.status_code == 200 and r.json()["effective"]["margin_ceiling"] == "0.08"
    quote = client.get(f"/api/v1/products/{sellable}/pricing/US", params={"price": "21.50"}).json()
    assert (quote["within_policy"], quote["allowed_max"]) == (True, "22.26")  # was 20.78 at the 5 % ceiling
    assert client.get(f"/api/v1/products/{sellable}/pricing/DE").json()["policy"]["margin_ceiling"] == "0.05"


def test_without_a_bom_the_margin_is_unknown_and_listing_is_refused(eco: Services, product: str,
                                                                   passed: dict[str, set[str]]) -> None:
    passed[product] = {"DE", "US"}
    approve_design(eco, product)
    eco.products.transition(product, "approved", actor="op")
    with pytest.raises(InvalidInput) as err:
        eco.ecosystem.listings.add(product, "US", price="19.99", actor="op")
    assert err.value.code == "no_bom"


def test_kpis_show_price_and_margin_per_market(client: TestClient, eco: Services, sellable: str) -> None:
    client.post("/api/v1/listings", json={"model": sellable, "market": "US", "price": "19.90"})
    client.post("/api/v1/listings", json={"model": sellable, "market": "DE", "price": "18.31"})
    by_market = client.get("/api/v1/kpis").json()["pricing_by_market"]
    assert by_market["US"] == {"currency": "USD", "listings": 1, "outside_policy": 0, "unknown_cost": 0,
                               "avg_price_usd": "19.90", "avg_margin": "0.0300", "min_margin": "0.0300",
                               "max_margin": "0.0300"}
    assert by_market["DE"]["currency"] == "EUR" and by_market["DE"]["outside_policy"] == 0
    out = subprocess.run([sys.executable, "-m", "ecohub.cli", "kpi", "--data-dir", str(eco.settings.data_dir)],
                         capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                           "COLUMNS": "200"}, check=True).stdout
    assert "price and net margin per market" in out and "0.0300" in out
    data = json.loads(subprocess.run([sys.executable, "-m", "ecohub.cli", "kpi", "--json", "--data-dir",
                                      str(eco.settings.data_dir)], capture_output=True, text=True, timeout=120,
                                     check=True).stdout)
    assert data["pricing_by_market"]["US"]["avg_margin"] == "0.0300"


def test_the_console_shows_margin_per_market_and_the_design_review(eco: Services, sellable: str) -> None:
    eco.ecosystem.listings.add(sellable, "US", price="19.90", actor="op")
    eco.ecosystem.designs.upload(sellable, b"\x89PNG\r\n\x1a\nv2", filename="v2.png", actor="partner:acme")
    token = eco.tokens.create(role="operator", label="console")["token"]
    with TestClient(create_app(eco)) as browser:
        assert browser.post("/console/login", data={"token": token}, follow_redirects=False).status_code == 303
        overview = browser.get("/console/").text
        assert "Price and net margin per market" in overview and "3.0 %" in overview
        page = browser.get(f"/console/products/{sellable}").text
        assert "v2</b>" in page and "Pending" in page  # the design's state in words
        assert "$19.90" in page and "$18.71 … $20.78" in page  # formatted for the page's locale (en)
        r = browser.post(f"/console/products/{sellable}/designs/2/approve", data={"note": ""},
                         follow_redirects=False)
        assert r.status_code == 303
    assert eco.ecosystem.designs.list(sellable)[0]["status"] == "approved"
