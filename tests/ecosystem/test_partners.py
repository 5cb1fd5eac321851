"""Partners, rounds, exits and the portfolio through the service: bad input is refused and nothing half-written."""

from __future__ import annotations

import pytest

from ecohub.bootstrap import Services
from ecohub.errors import Conflict, InvalidInput, NotFound


def test_round_computes_post_money_and_the_brand_stake(eco: Services, partner: str) -> None:
    p = eco.ecosystem.partners
    r = p.add_round(partner, series="series_a", closed_on="2016-01-10", pre_money="8000000", raised="2000000",
                    brand_amount="1500000", actor="test")
    assert r["post_money"] == "10000000.00"
    assert r["brand_stake_percent"] == "15.0000"
    assert r["cap_table"] == {"founders": "80.0000", "brand": "15.0000", "series_a investors": "5.0000"}
    r = p.add_round(partner, series="series_b", closed_on="2017-01-10", pre_money="30000000", raised="10000000",
                    actor="test")
    assert r["brand_stake_percent"] == "11.2500"  # diluted by 30/40, no participation
    assert p.get(partner)["stage"] == "series_b"


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"pre_money": "-1"}, "invalid_amount"),
    ({"raised": "-5"}, "invalid_amount"),
    ({"brand_amount": "-1"}, "invalid_amount"),
    ({"brand_amount": "3000000"}, "invalid_amount"),
    ({"pre_money": 1.5}, "invalid_amount"),
    ({"currency": "XYZ"}, "unknown_currency"),
    ({"closed_on": "2014-12-31"}, "round_before_founding"),
    ({"closed_on": "not a date"}, "invalid_date"),
])
def test_bad_rounds_are_refused_and_nothing_is_written(eco: Services, partner: str, kwargs: dict[str, object],
                                                       code: str) -> None:
    args: dict[str, object] = {"series": "seed", "closed_on": "2016-01-01", "pre_money": "1000000",
                               "raised": "2000000", "brand_amount": "0", **kwargs}
    with pytest.raises(InvalidInput) as err:
        eco.ecosystem.partners.add_round(partner, actor="test", **args)  # type: ignore[arg-type]
    assert err.value.code == code
    assert eco.ecosystem.partners.rounds(partner) == []


def test_minority_rule_refuses_then_records_the_override(eco: Services, partner: str) -> None:
    p = eco.ecosystem.partners
    terms = {"series": "seed", "closed_on": "2016-01-01", "pre_money": "1000000", "raised": "1000000",
             "brand_amount": "1000000"}
    with pytest.raises(Conflict) as err:
        p.add_round(partner, actor="test", **terms)
    assert err.value.code == "minority_rule" and "50" in err.value.message
    assert p.rounds(partner) == [] and p.overrides() == []
    r = p.add_round(partner, actor="operator:alice", override_reason="joint venture approved by the board", **terms)
    assert r["brand_stake_percent"] == "50.0000"
    [o] = p.overrides(partner)
    assert (o["actor"], o["reason"], o["round_id"]) == ("operator:alice", "joint venture approved by the board",
                                                        r["id"])


def test_partner_validation(eco: Services, partner: str) -> None:
    p = eco.ecosystem.partners
    with pytest.raises(InvalidInput):
        p.add(name="X", country="ZZ", founded_on="2010-01-01", actor="t")
    with pytest.raises(Conflict):
        p.add(name="Acme Robotics", country="CN", founded_on="2010-01-01", actor="t")
    with pytest.raises(InvalidInput):
        p.add(name="Y", kind="investor", country="CN", founded_on="2010-01-01", actor="t")
    with pytest.raises(NotFound):
        p.add_round("nobody", series="seed", closed_on="2016-01-01", pre_money=1, raised=1, actor="t")


def test_exits_and_portfolio_with_history(eco: Services, partner: str) -> None:
    p = eco.ecosystem.partners
    p.add(name="Beta", partner_id="beta", country="US", founded_on="2012-01-01", actor="t")
    p.add_round(partner, series="a", closed_on="2016-01-01", pre_money="8000000", raised="2000000",
                brand_amount="2000000", actor="t")  # 20%
    p.add_round("beta", series="a", closed_on="2017-01-01", pre_money="9000000", raised="1000000",
                brand_amount="1000000", actor="t")  # 10% of 10M
    assert p.portfolio()["total"] == {"USD": "3000000.00"}
    with pytest.raises(Conflict):
        p.record_exit(partner, kind="ipo", exited_on="2015-06-01", valuation="1", actor="t")
    p.record_exit(partner, kind="ipo", exited_on="2020-10-29", valuation="100000000", venue="STAR", actor="t")
    acq = p.record_exit("beta", kind="acquisition", exited_on="2021-01-01", valuation="50000000", actor="t")
    assert acq["brand_proceeds"] == "5000000.00"
    folio = p.portfolio()
    assert folio["total"] == {"USD": "20000000.00"} and folio["realised"] == {"USD": "5000000.00"}
    history = [(h["date"], h["total"]["USD"]) for h in p.portfolio_history()]
    assert history == [("2016-01-01", "2000000.00"), ("2017-01-01", "3000000.00"), ("2020-10-29", "21000000.00"),
                       ("2021-01-01", "20000000.00")]
    with pytest.raises(Conflict) as err:
        p.add_round(partner, series="b", closed_on="2021-01-01", pre_money=1, raised=1, actor="t")
    assert err.value.code == "partner_exited"
    assert p.by_stage() == {"listed": 1, "acquired": 1}
