"""Property tests of the cap table: stakes sum to 100%, dilution is monotone, the minority rule holds."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecohub.bootstrap import Services
from ecohub.ecosystem import captable
from ecohub.ecosystem.captable import BRAND, CapTable, RoundTerms, apply_round
from ecohub.errors import Conflict, InvalidInput

amounts = st.integers(min_value=1, max_value=10**12).map(Decimal)


@st.composite
def rounds(draw: st.DrawFn) -> RoundTerms:
    pre, raised = draw(amounts), draw(amounts)
    share = draw(st.fractions(min_value=0, max_value=1))
    brand = (raised * share.numerator / share.denominator).quantize(Decimal("0.01"))
    return RoundTerms(draw(st.sampled_from(["seed", "series_a", "series_b"])), pre, raised, min(brand, raised))


@given(st.lists(rounds(), min_size=1, max_size=8))
def test_stakes_of_all_holders_sum_to_100_percent(terms: list[RoundTerms]) -> None:
    for table in captable.history(terms):
        assert sum(table.stakes.values()) == 1
        assert all(s >= 0 for s in table.stakes.values())


@given(st.lists(rounds(), max_size=6), rounds())
def test_brand_stake_follows_the_formula_and_never_rises_without_participation(
        before: list[RoundTerms], terms: RoundTerms) -> None:
    table = (captable.history(before) or [CapTable()])[-1]
    after = apply_round(table, terms)
    expected = (table.brand * Fraction(terms.pre_money) + Fraction(terms.brand_amount)) / Fraction(terms.post_money)
    assert after.brand == expected
    passive = apply_round(table, RoundTerms(terms.series, terms.pre_money, terms.raised, Decimal(0)))
    assert passive.brand <= table.brand
    assert passive.brand < table.brand or table.brand == 0
    for holder, stake in table.stakes.items():  # every holder not buying in this round dilutes by pre/post
        if holder == f"{terms.series} investors":
            continue
        assert passive.stakes[holder] == stake * Fraction(terms.pre_money) / Fraction(terms.post_money)


@given(st.fractions(min_value=0, max_value=1), st.sampled_from([None, "", "  ", "board approved"]))
def test_minority_rule_refuses_half_or_more_unless_overridden(stake: Fraction, reason: str | None) -> None:
    if stake < Fraction(1, 2):
        assert captable.check_minority(stake, override_reason=reason) is False
    elif reason and reason.strip():
        assert captable.check_minority(stake, override_reason=reason) is True
    else:
        with pytest.raises(Conflict) as err:
            captable.check_minority(stake, override_reason=reason)
        assert err.value.code == "minority_rule"


def test_bad_terms_are_refused() -> None:
    for terms in (RoundTerms("a", Decimal(0), Decimal(1), Decimal(0)), RoundTerms("a", Decimal(1), Decimal(-1), 0),
                  RoundTerms("a", Decimal(1), Decimal(1), Decimal(2)), RoundTerms("a", Decimal(1), Decimal(1), -1)):
        with pytest.raises(InvalidInput):
            apply_round(CapTable(), terms)  # type: ignore[arg-type]


_ids = count()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(1, 10**9), st.integers(0, 100)), min_size=1,
                max_size=5))
def test_service_never_stores_a_majority_without_an_audited_override(
        eco: Services, steps: list[tuple[int, int, int]]) -> None:
    partners = eco.ecosystem.partners
    pid = f"p{next(_ids)}"
    partners.add(name=pid, partner_id=pid, country="DE", founded_on="2010-01-01", actor="test")
    for i, (pre, raised, pct) in enumerate(steps):
        brand = raised * pct // 100
        try:
            partners.add_round(pid, series=f"r{i}", closed_on=f"201{i}-06-01", pre_money=pre, raised=raised,
                               brand_amount=brand, actor="test")
        except Conflict as err:
            assert err.code == "minority_rule"
    for r in partners.rounds(pid):
        assert Decimal(r["brand_stake_percent"]) < 50
    table = partners.cap_table(pid)
    for step in table["rounds"]:
        assert abs(sum(Decimal(v) for v in step["stakes_percent"].values()) - 100) < Decimal("0.001")
    assert Decimal(table["current_percent"].get(BRAND, "0")) == Decimal(table["brand_percent"])
