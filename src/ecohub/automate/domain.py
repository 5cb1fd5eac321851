"""Pure rules of automations: triggers, conditions, actions as values; crossing, condition and loop evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any, Protocol

MISSING: Any = object()  # "no value known yet", distinct from any reported value (None included)


class Op(StrEnum):
    """A comparison of a reported value with a constant."""

    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


ORDERED = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})


def compare(value: Any, op: Op, ref: Any) -> bool:
    """`value op ref`; values of kinds that do not compare (a string > a number, a bool > 3) are simply False."""
    if value is MISSING:
        return False
    if op == Op.EQ:
        return bool(value == ref) and (type(value) is bool) == (type(ref) is bool)
    if op == Op.NE:
        return not compare(value, Op.EQ, ref)
    if isinstance(value, bool) or isinstance(ref, bool) or not isinstance(value, int | float) \
            or not isinstance(ref, int | float):
        return False
    if op == Op.GT:
        return value > ref
    if op == Op.GE:
        return value >= ref
    if op == Op.LT:
        return value < ref
    return bool(value <= ref)


# ---------------------------------------------------------------------------------------------- triggers


@dataclass(frozen=True, slots=True)
class PropertyTrigger:
    """A property changed (no `op`), or its value crossed into `op value` (false → true)."""

    did: str
    key: str
    op: Op | None = None
    value: Any = None


@dataclass(frozen=True, slots=True)
class EventTrigger:
    """A device event `siid.eiid` occurred."""

    did: str
    key: str


@dataclass(frozen=True, slots=True)
class OnlineTrigger:
    """A device came online (`online` True), went offline (False) or either (None)."""

    did: str
    online: bool | None = None


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """A cron expression (five fields) in the rule's time zone; `at HH:MM` is stored as one."""

    cron: str


Trigger = PropertyTrigger | EventTrigger | OnlineTrigger | ScheduleTrigger


# -------------------------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    """The last known value of a property compares true."""

    did: str
    key: str
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class TimeCondition:
    """Local time of day within [after, before) (wrapping midnight when after > before), on ISO weekdays."""

    after: time | None = None
    before: time | None = None
    weekdays: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every condition holds (an empty list holds)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one condition holds (an empty list does not)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class NotOf:
    """The condition does not hold."""

    item: Condition


Condition = PropertyCondition | TimeCondition | AllOf | AnyOf | NotOf


# ----------------------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class SetAction:
    """Set properties of a device (keys `siid.piid`)."""

    did: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallAction:
    """Call a device action `siid.aiid` with inputs by piid."""

    did: str
    key: str
    inputs: Mapping[int, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunRuleAction:
    """Run another rule of the same home (its conditions are checked unless `skip_conditions`)."""

    rule_id: str
    skip_conditions: bool = False


@dataclass(frozen=True, slots=True)
class WebhookAction:
    """POST a JSON notification to a URL."""

    url: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NotifyAction:
    """Notify the people of the rule's home: a title and a message template ({rule}, {device}, {prop}, {value},
    {event}, {online}, {home} filled in from the firing)."""

    message: str
    title: str | None = None
    severity: str = "info"


NOTIFY_FIELDS = frozenset({"rule", "device", "did", "prop", "value", "previous", "event", "online", "home"})

Action = SetAction | CallAction | RunRuleAction | WebhookAction | NotifyAction


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule: any trigger fires it; then the conditions decide; then the actions run in order."""

    name: str
    triggers: tuple[Trigger, ...]
    actions: tuple[Action, ...]
    conditions: Condition | None = None
    tz: str = "UTC"
    max_runs_per_minute: int = 10

    def devices(self) -> set[str]:
        """Every device the rule names (all must be bound to the rule's home)."""
        dids = {t.did for t in self.triggers if not isinstance(t, ScheduleTrigger)}
        dids |= {a.did for a in self.actions if isinstance(a, SetAction | CallAction)}
        if self.conditions is not None:
            dids |= {c.did for c in walk(self.conditions) if isinstance(c, PropertyCondition)}
        return dids


def walk(cond: Condition) -> list[Condition]:
    """The condition and every condition nested in it."""
    out: list[Condition] = [cond]
    if isinstance(cond, AllOf | AnyOf):
        for c in cond.items:
            out += walk(c)
    elif isinstance(cond, NotOf):
        out += walk(cond.item)
    return out


# ------------------------------------------------------------------------------------------- evaluation


def property_fires(trigger: PropertyTrigger, previous: Any, current: Any) -> bool:
    """A change trigger fires on a different value; a threshold trigger only when the value crosses into it."""
    if trigger.op is None:
        return previous is MISSING or previous != current or type(previous) is not type(current)
    return compare(current, trigger.op, trigger.value) and not compare(previous, trigger.op, trigger.value)


def in_window(cond: TimeCondition, now: datetime) -> bool:
    """Whether a local time falls in the window (after inclusive, before exclusive)."""
    if cond.weekdays is not None and now.isoweekday() not in cond.weekdays:
        return False
    t = now.time().replace(tzinfo=None)
    lo, hi = cond.after, cond.before
    if lo is None and hi is None:
        return True
    if lo is None:
        return t < hi  # type: ignore[operator]
    if hi is None:
        return t >= lo
    return lo <= t < hi if lo <= hi else (t >= lo or t < hi)


Lookup = Callable[[str, str], Any]


def evaluate(cond: Condition | None, lookup: Lookup, now: datetime) -> tuple[bool, dict[str, Any]]:
    """Evaluate a condition tree; the explanation names each leaf's value and result (for the run history)."""
    if cond is None:
        return True, {"result": True, "why": "no conditions"}
    if isinstance(cond, PropertyCondition):
        value = lookup(cond.did, cond.key)
        ok = compare(value, cond.op, cond.value)
        return ok, {"did": cond.did, "key": cond.key, "op": cond.op.value, "value": cond.value,
                    "actual": None if value is MISSING else value, "known": value is not MISSING, "result": ok}
    if isinstance(cond, TimeCondition):
        ok = in_window(cond, now)
        return ok, {"time": now.strftime("%a %H:%M"), "after": _hhmm(cond.after), "before": _hhmm(cond.before),
                    "result": ok}
    if isinstance(cond, NotOf):
        ok, why = evaluate(cond.item, lookup, now)
        return not ok, {"not": why, "result": not ok}
    parts = [evaluate(c, lookup, now) for c in cond.items]
    results = [ok for ok, _ in parts]
    ok = all(results) if isinstance(cond, AllOf) else any(results)
    return ok, {"all" if isinstance(cond, AllOf) else "any": [why for _, why in parts], "result": ok}


def _hhmm(t: time | None) -> str | None:
    return t.strftime("%H:%M") if t is not None else None


# ------------------------------------------------------------------------------------------------- loops


def could_trigger(action: Action, trigger: Trigger) -> bool:
    """Whether running `action` may fire `trigger` (a set value that cannot satisfy a threshold may not)."""
    if not isinstance(action, SetAction) or not isinstance(trigger, PropertyTrigger) or action.did != trigger.did:
        return False
    if trigger.key not in action.values:
        return False
    return trigger.op is None or compare(action.values[trigger.key], trigger.op, trigger.value)


def find_loop(rules: Mapping[str, RuleSpec], start: str) -> list[str] | None:
    """A cycle through `start` in the graph "running A may fire B" (run-rule edges and set → trigger), or None."""

    def successors(rid: str) -> list[str]:
        rule = rules[rid]
        out = [a.rule_id for a in rule.actions if isinstance(a, RunRuleAction) and a.rule_id in rules]
        out += [other for other, spec in rules.items()
                if any(could_trigger(a, t) for a in rule.actions for t in spec.triggers)]
        return out

    path: list[str] = [start]
    seen: set[str] = set()

    def dfs(rid: str) -> list[str] | None:
        for nxt in successors(rid):
            if nxt == start:
                return [*path, start]
            if nxt in seen:
                continue
            seen.add(nxt)
            path.append(nxt)
            found = dfs(nxt)
            if found:
                return found
            path.pop()
        return None

    return dfs(start) if start in rules else None


@dataclass(frozen=True, slots=True)
class LoadedRule:
    """An enabled rule as the engine holds it."""

    rule_id: str
    home_id: str
    cell: str
    spec: RuleSpec


class RuleRunner(Protocol):
    """What runs a rule by hand (the engine of a running hub)."""

    async def run_now(self, rule: LoadedRule, *, actor: str, skip_conditions: bool = False) -> dict[str, Any]:
        """Run `rule` now; the run is stored before this returns."""
        ...
