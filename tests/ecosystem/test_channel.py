"""Markets as data and the listing gate: approved/launched products, certified markets, the market's currency."""

from __future__ import annotations

import pytest

from ecohub.bootstrap import Services
from ecohub.ecosystem.domain import CURRENCIES
from ecohub.errors import Conflict, InvalidInput
from ecohub.settings import DEFAULT_CELLS
from tests.helpers import approve_design, price_for_sale


def test_markets_are_loaded_by_migration(eco: Services) -> None:
    markets = eco.ecosystem.markets.list()
    assert 85 <= len(markets) <= 95
    assert {m["currency"] for m in markets} <= CURRENCIES
    assert {m["cell"] for m in markets} == set(DEFAULT_CELLS)
    by_code = {m["code"]: m for m in markets}
    assert by_code["DE"]["cell"] == "eu" and {"CE-RED", "EN-18031"} <= set(by_code["DE"]["cert_profile"])
    assert by_code["GB"]["cell"] == "eu" and {"UKCA", "PSTI"} <= set(by_code["GB"]["cert_profile"])
    assert by_code["US"]["cell"] == "us" and "FCC" in by_code["US"]["cert_profile"]
    assert by_code["BR"]["cell"] == "us"
    assert by_code["CN"]["cell"] == "cn" and "CCC" in by_code["CN"]["cert_profile"]
    assert by_code["IN"]["cell"] == "in" and "BIS" in by_code["IN"]["cert_profile"]
    assert by_code["JP"]["cell"] == "sg" and by_code["JP"]["currency"] == "JPY"
    assert len(eco.ecosystem.catalogue.categories()) >= 30


def test_listing_gate(eco: Services, product: str, passed: dict[str, set[str]]) -> None:
    listings = eco.ecosystem.listings
    with pytest.raises(Conflict) as err:
        listings.add(product, "DE", price="19.99", actor="op")
    assert err.value.code == "not_listable"
    passed[product] = {"DE", "US"}
    approve_design(eco, product)
    price_for_sale(eco, product)
    eco.products.transition(product, "approved", actor="op")
    with pytest.raises(Conflict) as err:
        listings.add(product, "JP", price="2000", actor="op")
    assert err.value.code == "certification_required" and "TELEC" in err.value.message
    with pytest.raises(InvalidInput) as err:
        listings.add(product, "DE", price="19.99", currency="USD", actor="op")
    assert err.value.code == "wrong_currency"
    with pytest.raises(InvalidInput):
        listings.add(product, "ZZ", price="1", actor="op")
    with pytest.raises(InvalidInput):
        listings.add(product, "DE", price="19.999", actor="op")
    row = listings.add(product, "DE", price="18.39", actor="op")
    assert (row["currency"], row["price"], row["availability"], row["sku"]) == ("EUR", "18.39", "in_stock",
                                                                                 "ACME-PLUG-V1-DE")
    with pytest.raises(Conflict):
        listings.add(product, "DE", price="18", actor="op")
    assert listings.update(row["id"], availability="out_of_stock", actor="op")["availability"] == "out_of_stock"
    eco.products.transition(product, "launched", actor="op")
    listings.add(product, "US", price="19.99", actor="op")
    assert eco.ecosystem.catalogue.search(market="US")["total"] == 1
    assert eco.ecosystem.catalogue.counts("market") == {"DE": 1, "US": 1}
    eco.products.transition(product, "discontinued", actor="op")
    assert {x["availability"] for x in listings.list(model=product)} == {"discontinued"}
    assert eco.ecosystem.catalogue.search(market="US")["total"] == 0


def test_supply_chain_demand_and_dependency(eco: Services, product: str, passed: dict[str, set[str]]) -> None:
    supply = eco.ecosystem.supply
    supply.add_supplier(name="Espressif", supplier_id="espressif", country="CN", kind="wifi-module")
    supply.add_component(part_no="ESP32-C3", supplier_id="espressif", name="Wi-Fi MCU", kind="wifi-module",
                         unit_cost="1.8500")
    with pytest.raises(InvalidInput):
        supply.add_component(part_no="BAD", supplier_id="espressif", name="x", kind="x", unit_cost="-1")
    with pytest.raises(InvalidInput):
        supply.set_bom(product, [{"part_no": "ESP32-C3", "quantity": 0}])
    with pytest.raises(InvalidInput):
        supply.set_bom(product, [{"part_no": "NOPE", "quantity": 1}])
    assert supply.set_bom(product, [{"part_no": "ESP32-C3", "quantity": 2}])[0]["quantity"] == 2
    assert supply.demand() == []  # only launched products count by default
    passed[product] = {"DE", "US"}
    approve_design(eco, product)
    eco.products.transition(product, "approved", actor="op")
    eco.products.transition(product, "launched", actor="op")
    [line] = supply.demand()
    assert (line["annual_units"], line["partners"], line["spend"]) == (200_000, 1, "370000.00")
    [dep] = supply.dependency()
    assert (dep["supplier_id"], dep["partners"], dep["partner_share_percent"]) == ("espressif", 1, 100.0)
