"""Rule evaluation as pure functions: thresholds fire exactly on crossings, all/any semantics, loop detection."""

from __future__ import annotations

from datetime import UTC, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from ecohub.automate.domain import (
    MISSING,
    AllOf,
    AnyOf,
    NotOf,
    Op,
    PropertyCondition,
    PropertyTrigger,
    RuleSpec,
    RunRuleAction,
    SetAction,
    TimeCondition,
    compare,
    evaluate,
    find_loop,
    property_fires,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ops = st.sampled_from([Op.GT, Op.GE, Op.LT, Op.LE, Op.EQ, Op.NE])
numbers = st.integers(-50, 50)


@given(ops, numbers, st.lists(numbers, max_size=40))
def test_a_threshold_fires_exactly_when_the_value_crosses_into_it(op: Op, threshold: int, values: list[int]) -> None:
    trigger = PropertyTrigger("d", "1.1", op, threshold)
    previous = MISSING
    for value in values:
        fired = property_fires(trigger, previous, value)
        was = previous is not MISSING and compare(previous, op, threshold)
        assert fired == (compare(value, op, threshold) and not was)
        previous = value
    # never twice in a row without leaving the range in between
    inside = [compare(v, op, threshold) for v in values]
    fires = [property_fires(trigger, p, v) for p, v in zip([MISSING, *values], values, strict=False)]
    for i in range(1, len(values)):
        if fires[i]:
            assert not inside[i - 1]


@given(st.lists(st.one_of(st.none(), st.booleans(), numbers), max_size=20))
def test_a_change_trigger_fires_on_every_change_and_only_then(values: list[object]) -> None:
    trigger = PropertyTrigger("d", "1.1")
    previous: object = MISSING
    for value in values:
        changed = previous is MISSING or previous != value or type(previous) is not type(value)
        assert property_fires(trigger, previous, value) == changed
        previous = value


leaf_values = st.dictionaries(st.sampled_from(["1.1", "1.2", "1.3"]), numbers, max_size=3)


def leaves() -> st.SearchStrategy[PropertyCondition]:
    return st.builds(PropertyCondition, st.just("d"), st.sampled_from(["1.1", "1.2", "1.3"]), ops, numbers)


conditions = st.recursive(leaves(), lambda inner: st.one_of(
    st.builds(AllOf, st.lists(inner, max_size=4).map(tuple)),
    st.builds(AnyOf, st.lists(inner, max_size=4).map(tuple)),
    st.builds(NotOf, inner)), max_leaves=12)


def reference(c: object, values: dict[str, int]) -> bool:
    if isinstance(c, AllOf):
        return all(reference(x, values) for x in c.items)
    if isinstance(c, AnyOf):
        return any(reference(x, values) for x in c.items)
    if isinstance(c, NotOf):
        return not reference(c.item, values)
    assert isinstance(c, PropertyCondition)
    return c.key in values and compare(values[c.key], c.op, c.value)


@given(conditions, leaf_values)
def test_all_any_not_evaluate_like_the_logic_they_name(cond: object, values: dict[str, int]) -> None:
    ok, why = evaluate(cond, lambda _d, k: values.get(k, MISSING), NOW)  # type: ignore[arg-type]
    assert ok == reference(cond, values) == why["result"]


def test_comparisons_do_not_mix_kinds_and_unknown_values_never_hold() -> None:
    assert not compare(True, Op.EQ, 1) and compare(True, Op.NE, 1) and not compare("5", Op.GT, 3)
    assert not compare(MISSING, Op.NE, 3) and compare(2.5, Op.LT, 3)


def test_time_windows_wrap_midnight_and_respect_weekdays() -> None:
    night = TimeCondition(time(22), time(6))
    assert evaluate(night, lambda *_: MISSING, NOW.replace(hour=23))[0]
    assert evaluate(night, lambda *_: MISSING, NOW.replace(hour=5))[0]
    assert not evaluate(night, lambda *_: MISSING, NOW)[0]
    assert not evaluate(TimeCondition(weekdays=frozenset({6, 7})), lambda *_: MISSING, NOW)[0]  # a Monday


def test_loops_through_sets_and_run_rule_are_found() -> None:
    def rule(trigger_key: str, sets: dict[str, object], runs: str | None = None) -> RuleSpec:
        actions: tuple = (SetAction("d", sets),) + ((RunRuleAction(runs),) if runs else ())
        return RuleSpec("r", (PropertyTrigger("d", trigger_key, Op.EQ, True),), actions)

    assert find_loop({"a": rule("1.1", {"1.1": True})}, "a") == ["a", "a"]
    assert find_loop({"a": rule("1.1", {"1.1": False})}, "a") is None  # the value set cannot satisfy the trigger
    chain = {"a": rule("1.1", {"1.2": True}), "b": rule("1.2", {"1.3": True}), "c": rule("1.3", {"1.1": True})}
    assert find_loop(chain, "b") == ["b", "c", "a", "b"]
    assert find_loop({"a": rule("1.1", {}, runs="b"), "b": rule("1.2", {})}, "a") is None
    assert find_loop({"a": rule("1.1", {}, runs="b"), "b": rule("1.2", {}, runs="a")}, "a") == ["a", "b", "a"]
