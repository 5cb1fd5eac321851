"""A spec compiled once into flat lookup tables of value checkers for the hot path (no jsonschema)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecohub.spec.domain import INT_BOUNDS, Action, Event, Property, Spec

DEFAULT_MAX_STRING = 1024


@dataclass(frozen=True, slots=True)
class ValueProblem:
    """Why a value is not acceptable; `kind` is `wrong_type` or `out_of_range`."""

    kind: str
    message: str


Checker = Callable[[Any], ValueProblem | None]


def _wrong_type(expected: str, value: Any) -> ValueProblem:
    return ValueProblem("wrong_type", f"expected {expected}, got {type(value).__name__} {value!r:.40}")


def _make_checker(prop: Property) -> Checker:
    """Build the closure that checks one property's values; everything decidable is decided here."""
    fmt = prop.format
    allowed: frozenset[Any] | None = None
    if prop.value_list is not None:
        allowed = frozenset(item.value for item in prop.value_list)

    if fmt == "bool":

        def check_bool(value: Any) -> ValueProblem | None:
            if value is True or value is False:
                return None
            return _wrong_type("bool", value)

        return check_bool

    if fmt == "string":
        limit = prop.max_length or DEFAULT_MAX_STRING

        def check_string(value: Any) -> ValueProblem | None:
            if type(value) is not str:
                return _wrong_type("string", value)
            if len(value) > limit:
                return ValueProblem("out_of_range", f"string longer than {limit} characters")
            if allowed is not None and value not in allowed:
                return ValueProblem("out_of_range", f"{value!r:.40} is not in the value-list")
            return None

        return check_string

    is_int = fmt in INT_BOUNDS
    lo, hi = INT_BOUNDS.get(fmt, (-math.inf, math.inf))
    step = 0.0
    if prop.value_range is not None:
        lo, hi, step = max(lo, prop.value_range.min), min(hi, prop.value_range.max), prop.value_range.step
    base = prop.value_range.min if prop.value_range is not None else 0

    def check_number(value: Any) -> ValueProblem | None:
        t = type(value)
        if is_int:
            if t is not int:
                return _wrong_type(fmt, value)
        elif t is not float and t is not int:
            return _wrong_type("float", value)
        elif t is int and value.bit_length() > 63:  # beyond what a float or a 64-bit column holds exactly
            return ValueProblem("out_of_range", f"an integer of {value.bit_length()} bits is out of range")
        elif not math.isfinite(value):
            return ValueProblem("out_of_range", f"{value} is not a finite number")
        if allowed is not None:
            if value not in allowed:
                return ValueProblem("out_of_range", f"{value} is not in the value-list")
            return None
        if value < lo or value > hi:
            return ValueProblem("out_of_range", f"{value} is outside [{lo}, {hi}]")
        if step:
            if is_int and type(step) is int:
                if (value - base) % step:
                    return ValueProblem("out_of_range", f"{value} is not on the step {step} from {base}")
            else:
                ratio = (value - base) / step
                if abs(ratio - round(ratio)) > 1e-6:
                    return ValueProblem("out_of_range", f"{value} is not on the step {step} from {base}")
        return None

    return check_number


@dataclass(frozen=True, slots=True)
class CompiledProperty:
    """A property with its checker and the flags the hot path needs."""

    prop: Property
    check: Checker
    readable: bool
    writable: bool
    notifies: bool


class CompiledSpec:
    """Flat dicts keyed by (siid, iid): O(1) lookups and a prebuilt checker per property."""

    __slots__ = ("actions", "events", "hash", "properties", "spec")

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.hash = spec.hash
        self.properties: dict[tuple[int, int], CompiledProperty] = {
            (p.siid, p.iid): CompiledProperty(p, _make_checker(p), p.readable, p.writable, p.notifies)
            for p in spec.properties()
        }
        self.actions: dict[tuple[int, int], Action] = {
            (a.siid, a.iid): a for s in spec.services for a in s.actions
        }
        self.events: dict[tuple[int, int], Event] = {(e.siid, e.iid): e for s in spec.services for e in s.events}

    def check_value(self, siid: int, piid: int, value: Any) -> ValueProblem | None:
        """Check a value for a property; unknown properties are reported as such."""
        cp = self.properties.get((siid, piid))
        if cp is None:
            return ValueProblem("not_found", f"property {siid}.{piid} is not in the spec")
        return cp.check(value)

    def random_value(self, siid: int, piid: int, rnd: Any) -> Any:
        """A valid value drawn with `rnd` (random.Random); the simulator and the certify suite use it."""
        return random_value(self.properties[(siid, piid)].prop, rnd)


def random_value(prop: Property, rnd: Any) -> Any:
    """Draw a value inside the property's declared domain."""
    if prop.value_list:
        return rnd.choice(prop.value_list).value
    if prop.format == "bool":
        return rnd.random() < 0.5
    if prop.format == "string":
        return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
    lo, hi = INT_BOUNDS.get(prop.format, (-1000.0, 1000.0))
    step: float = 0
    if prop.value_range is not None:
        lo, hi, step = prop.value_range.min, prop.value_range.max, prop.value_range.step
    if prop.format in INT_BOUNDS:
        lo_i, hi_i = int(lo), int(hi)
        step_i = int(step) or 1
        return lo_i + step_i * rnd.randint(0, (hi_i - lo_i) // step_i)
    if step:
        n = int((hi - lo) / step + 1e-9)
        return round(lo + step * rnd.randint(0, n), 6)
    return round(rnd.uniform(lo, hi), 3)


def out_of_range_value(prop: Property) -> Any | None:
    """A value of the right type that the spec refuses, or None when every value of the type is valid."""
    if prop.value_list:
        values = {item.value for item in prop.value_list}
        if prop.format in INT_BOUNDS or prop.format == "float":
            candidate = max(values) + 1
            return candidate if candidate not in values else None
        if prop.format == "string":
            return "\u0000not-in-list"
        return None
    if prop.value_range is not None and prop.format != "bool":
        bound_hi = INT_BOUNDS.get(prop.format, (None, math.inf))[1]
        if prop.value_range.max < bound_hi:
            return prop.value_range.max + (prop.value_range.step or 1)
        return prop.value_range.min - (prop.value_range.step or 1)
    return None


def compile_spec(spec: Spec) -> CompiledSpec:
    """Compile a parsed spec once; keep the result per model."""
    return CompiledSpec(spec)
