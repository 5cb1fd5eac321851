"""The ecosystem REST routes: roles, partner scope, error format and status codes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from tests.ecosystem.conftest import spec
from tests.helpers import DEFINITION, approve_design, price_for_sale


@pytest.fixture
def client(eco: Services) -> Iterator[TestClient]:
    """An API client with an operator token."""
    token = eco.tokens.create(role="operator", label="tests")["token"]
    with TestClient(create_app(eco), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_partner_round_cap_table_and_minority_rule(client: TestClient) -> None:
    r = client.post("/api/v1/partners", json={"name": "Ninebot", "id": "ninebot", "country": "CN",
                                              "founded_on": "2012-01-01"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/partners/ninebot/rounds", json={"series": "series_a", "closed_on": "2014-01-01",
                                                             "pre_money": "80000000", "raised": "20000000",
                                                             "brand_amount": "10000000"})
    assert r.status_code == 201 and r.json()["brand_stake_percent"] == "10.0000"
    body = {"series": "series_b", "closed_on": "2015-01-01", "pre_money": "100000000", "raised": "100000000",
            "brand_amount": "95000000"}
    r = client.post("/api/v1/partners/ninebot/rounds", json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "minority_rule"
    r = client.post("/api/v1/partners/ninebot/rounds", json={**body, "closed_on": "2011-01-01"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "round_before_founding"
    r = client.post("/api/v1/partners/ninebot/rounds", json={**body, "raised": "-1"})
    assert r.status_code == 422
    r = client.post("/api/v1/partners/ninebot/rounds", json={**body, "currency": "ABC"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_currency"
    r = client.post("/api/v1/partners/ninebot/rounds", json={**body, "override_reason": "board approval"})
    assert r.status_code == 201
    table = client.get("/api/v1/partners/ninebot/cap-table").json()
    assert [step["stakes_percent"]["brand"] for step in table["rounds"]] == ["10.0000", "52.5000"]
    assert client.get("/api/v1/stake-overrides").json()[0]["reason"] == "board approval"
    r = client.post("/api/v1/partners/ninebot/exits", json={"kind": "ipo", "exited_on": "2020-10-29",
                                                            "valuation": "7500000000", "venue": "STAR"})
    assert r.status_code == 201
    assert client.get("/api/v1/portfolio").json()["total"] == {"USD": "3937500000.00"}
    assert len(client.get("/api/v1/portfolio/history").json()) == 3


def test_products_listings_catalogue_and_kpis(client: TestClient, eco: Services) -> None:
    eco.products.use_certification(lambda model, _h: frozenset({"DE", "US"}))
    r = client.post("/api/v1/products", json={"model": "acme.plug.v2", "category": "plug", "spec": spec(),
                                              "target_markets": ["DE", "US"], "target_price": "19.99",
                                              "forecast_volume": 50_000})
    assert r.status_code == 201 and r.json()["stage"] == "certification"
    approve_design(eco, "acme.plug.v2")
    price_for_sale(eco, "acme.plug.v2")
    r = client.post("/api/v1/products", json={"model": "acme.plug.v3", "category": "nope", "spec": spec()})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_category"
    r = client.post("/api/v1/products/acme.plug.v2/transitions", json={"to": "launched"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    r = client.post("/api/v1/listings", json={"model": "acme.plug.v2", "market": "DE", "price": "19.99"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_listable"
    assert client.post("/api/v1/products/acme.plug.v2/transitions", json={"to": "approved"}).status_code == 200
    r = client.post("/api/v1/listings", json={"model": "acme.plug.v2", "market": "DE", "price": "18.39"})
    assert r.status_code == 201 and r.json()["currency"] == "EUR"
    r = client.post("/api/v1/listings", json={"model": "acme.plug.v2", "market": "CN", "price": "99"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "certification_required"
    assert [t["to"] for t in client.get("/api/v1/products/acme.plug.v2/transitions").json()][-1] == "approved"
    r = client.patch("/api/v1/products/acme.plug.v2", json={"design_ref": "ID-7"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "read_only_field"
    r = client.patch("/api/v1/products/acme.plug.v2", json={"forecast_volume": 1000})
    assert r.status_code == 200 and r.json()["design_ref"].startswith("v1:sha256:")
    assert len(client.get("/api/v1/markets").json()) >= 85
    assert client.get("/api/v1/markets/CN").json()["cell"] == "cn"
    assert client.get("/api/v1/markets/XX").status_code == 404
    assert client.get("/api/v1/catalogue", params={"market": "DE"}).json()["total"] == 1
    assert client.get("/api/v1/catalogue/counts", params={"by": "category"}).json() == {"plug": 1}
    kpis = client.get("/api/v1/kpis").json()
    assert kpis["products_by_stage"]["approved"] == 1
    assert kpis["markets_per_product"]["listed_products"] == 1
    assert kpis["pricing_by_market"]["DE"]["avg_margin"] == "0.0300" and kpis["pricing_by_market"]["DE"][
        "outside_policy"] == 0


def test_partner_tokens_see_only_their_own(client: TestClient, eco: Services) -> None:
    for pid in ("acme", "beta"):
        eco.ecosystem.partners.add(name=pid, partner_id=pid, country="DE", founded_on="2015-01-01", actor="t")
    token = eco.tokens.create(role="partner", partner_id="acme")["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/partners/acme/cap-table", headers=headers).status_code == 200
    r = client.get("/api/v1/partners/beta/cap-table", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_partner"
    assert [p["id"] for p in client.get("/api/v1/partners", headers=headers).json()] == ["acme"]
    assert client.post("/api/v1/partners", headers=headers, json={"name": "x", "country": "DE",
                                                                  "founded_on": "2015-01-01"}).status_code == 403
    assert client.get("/api/v1/kpis", headers=headers).status_code == 403
    assert client.get("/api/v1/portfolio", headers=headers).status_code == 403
    assert client.get("/api/v1/kpis", headers={"Authorization": ""}).status_code == 401


def test_a_partner_cannot_replace_the_spec_of_a_brand_product(client: TestClient, eco: Services) -> None:
    """A product without a partner belongs to the brand: a partner's new spec for it is refused, nothing changes."""
    eco.ecosystem.partners.add(name="acme", partner_id="acme", country="DE", founded_on="2015-01-01", actor="t")
    doc = spec()
    created = client.post("/api/v1/products", json={"model": "brand.plug.v1", "spec": doc, **DEFINITION})
    assert created.status_code == 201
    before = client.get("/api/v1/products/brand.plug.v1").json()
    partner = {"Authorization": f"Bearer {eco.tokens.create(role='partner', partner_id='acme')['token']}"}
    changed = {**doc, "description": "a partner's takeover"}
    r = client.post("/api/v1/products", headers=partner, json={"model": "brand.plug.v1", "spec": changed})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_partner"
    after = client.get("/api/v1/products/brand.plug.v1").json()
    assert after["spec_version"] == before["spec_version"] and after["partner_id"] is None
    # its own products it may still update
    mine = client.post("/api/v1/products", headers=partner, json={"model": "acme.plug.v1", "spec": doc, **DEFINITION})
    assert mine.status_code == 201 and mine.json()["partner_id"] == "acme"
    assert client.post("/api/v1/products", headers=partner,
                       json={"model": "acme.plug.v1", "spec": changed}).status_code == 201
