"""The product lifecycle as a state machine with guards, recorded transitions and the certification evidence."""

from __future__ import annotations

import pytest

from ecohub.bootstrap import Services
from ecohub.errors import Conflict, InvalidInput
from tests.ecosystem.conftest import spec
from tests.helpers import approve_design


def test_import_keeps_walking_to_certification_and_records_each_step(eco: Services, product: str) -> None:
    view = eco.products.get(product)
    assert view.stage == "certification" and view.target_markets == ("DE", "US")
    assert view.to_dict()["target_price"] == "19.99"
    steps = [(h["from"], h["to"], h["actor"]) for h in eco.products.history(product)]
    assert steps == [(None, "concept", "test"), ("concept", "defined", "test"), ("defined", "in_development", "test"),
                     ("in_development", "certification", "test")]


def test_approval_needs_a_passing_report_for_every_target_market(eco: Services, product: str,
                                                                 passed: dict[str, set[str]]) -> None:
    with pytest.raises(Conflict) as err:
        eco.products.transition(product, "approved", actor="op")
    assert err.value.code == "guard_failed" and "DE, US" in err.value.message
    passed[product] = {"DE"}
    with pytest.raises(Conflict) as err:
        eco.products.transition(product, "approved", actor="op")
    assert "missing: US" in err.value.message
    passed[product] = {"DE", "US", "FR"}
    approve_design(eco, product)
    assert eco.products.transition(product, "approved", actor="operator:bob", reason="reports ok").stage == "approved"
    last = eco.products.history(product)[-1]
    assert (last["from"], last["to"], last["actor"], last["reason"]) == ("certification", "approved", "operator:bob",
                                                                          "reports ok")


def test_without_certification_evidence_nothing_is_approved(eco: Services, product: str) -> None:
    with pytest.raises(Conflict):
        eco.products.transition(product, "approved", actor="op")
    assert eco.products.get(product).stage == "certification"


def test_illegal_transitions_and_unknown_inputs(eco: Services, product: str) -> None:
    with pytest.raises(Conflict) as err:
        eco.products.transition(product, "launched", actor="op")
    assert err.value.code == "illegal_transition"
    with pytest.raises(InvalidInput):
        eco.products.transition(product, "shipped", actor="op")
    eco.products.transition(product, "rejected", actor="op")
    assert eco.products.transition(product, "in_development", actor="op").stage == "in_development"
    with pytest.raises(InvalidInput) as err:
        eco.products.define(product, actor="op", target_markets=["DE", "XX"])
    assert err.value.code == "unknown_market"
    assert eco.products.get(product).target_markets == ("DE", "US")  # nothing half-written
    with pytest.raises(InvalidInput):
        eco.products.import_spec(spec(), model="acme.toaster.v1", actor="t", category="toaster")
    with pytest.raises(InvalidInput):
        eco.products.define(product, actor="op", target_price="-3")


def test_define_sets_the_brand_definition(eco: Services, product: str) -> None:
    view = eco.products.define(product, actor="op", category="power-strip",
                               target_markets=["gb", "cn"], target_price="120.50", price_currency="CNY",
                               forecast_volume=5000)
    assert (view.category, view.design_ref, view.target_markets, view.price_currency, view.forecast_volume) == (
        "power-strip", "", ("CN", "GB"), "CNY", 5000)
    with pytest.raises(InvalidInput) as err:  # the ID design is a design record now, not free text
        eco.products.define(product, actor="op", design_ref="ID-42")
    assert err.value.code == "read_only_field"
