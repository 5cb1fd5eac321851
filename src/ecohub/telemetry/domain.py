"""Pure rules of downsampled reads: bucket sizes, aggregates per property kind, step runs, counter deltas."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ecohub.errors import ErrorCode, InvalidInput
from ecohub.spec.domain import Property

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
UNITS = {"s": 1000, "m": MINUTE, "h": HOUR, "d": DAY}
# the bucket a chart may ask for; `points` rounds up to the next of these so buckets stay calendar-friendly
NICE_BUCKETS = (MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 7 * DAY)
MAX_POINTS = 10_000  # buckets in one answer
MAX_RANGE_MS = 800 * DAY  # a read spans at most this (a bit over two years: rollups answer it)
MIN_BUCKET_MS = 1000
# cumulative units: a reading is a running total, so `delta` (consumption per bucket) is its natural view
COUNTER_UNITS = frozenset({"kwh", "wh", "kilowatt-hour", "watt-hour", "m3", "l", "litre", "liter", "count", "times"})
_BUCKET = re.compile(r"^(\d{1,6})([smhd])$")


class Agg(StrEnum):
    """The aggregate asked per bucket."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"
    DELTA = "delta"


NUMERIC_AGGS = frozenset({Agg.AVG, Agg.MIN, Agg.MAX, Agg.DELTA})


class Kind(StrEnum):
    """How a property's values are charted: a line of numbers, a step line of states, or text."""

    NUMBER = "number"
    COUNTER = "counter"  # a number that only grows (kWh, counts): `delta` is consumption per bucket
    STATE = "state"  # bool or a value-list enum: `last` per bucket and runs of equal values (a step line)
    TEXT = "text"


def kind_of(prop: Property | None) -> Kind:
    """The chart kind of a spec property (unknown properties are charted as numbers when they are numbers)."""
    if prop is None:
        return Kind.NUMBER
    if prop.format == "bool" or prop.value_list:
        return Kind.STATE
    if prop.format == "string":
        return Kind.TEXT
    if (prop.unit or "").lower() in COUNTER_UNITS or prop.name in ("electric-energy", "power-consumption"):
        return Kind.COUNTER
    return Kind.NUMBER


def parse_bucket(text: str) -> int:
    """`30s`, `1m`, `5m`, `1h`, `1d` → milliseconds; anything else is refused naming `bucket`."""
    m = _BUCKET.match(text.strip().lower())
    if not m or int(m.group(1)) == 0:
        raise InvalidInput(f"bucket {text!r} is not a size like 1m, 5m, 1h or 1d", code=ErrorCode.INVALID_BUCKET)
    return int(m.group(1)) * UNITS[m.group(2)]


def format_bucket(ms: int) -> str:
    """Milliseconds → the shortest `Nd`/`Nh`/`Nm`/`Ns` spelling."""
    for unit in ("d", "h", "m", "s"):
        if ms % UNITS[unit] == 0:
            return f"{ms // UNITS[unit]}{unit}"
    return f"{ms}ms"


def bucket_for_points(since: int, until: int, points: int) -> int:
    """The smallest nice bucket that gives at most `points` buckets over [since, until]."""
    if points <= 0:
        raise InvalidInput("points must be a positive number of chart points", code=ErrorCode.INVALID_POINTS)
    want = max(math.ceil((until - since + 1) / min(points, MAX_POINTS)), MIN_BUCKET_MS)
    for b in NICE_BUCKETS:
        if b >= want:
            return b
    return math.ceil(want / DAY) * DAY


def parse_agg(text: str | None, kind: Kind) -> Agg:
    """The aggregate asked (default: avg for numbers, delta for counters, last for states); refused naming `agg`."""
    if text is None:
        return {Kind.NUMBER: Agg.AVG, Kind.COUNTER: Agg.DELTA}.get(kind, Agg.LAST)
    try:
        agg = Agg(text.lower())
    except ValueError:
        raise InvalidInput(f"agg {text!r} is not one of {', '.join(a.value for a in Agg)}",
                           code=ErrorCode.INVALID_AGG) from None
    if agg in NUMERIC_AGGS and kind in (Kind.STATE, Kind.TEXT):
        raise InvalidInput(f"agg {agg.value!r} needs a numeric property; this one is {kind.value} "
                           "(use agg=last or agg=count)", code=ErrorCode.INVALID_AGG)
    return agg


def check_range(since: int, until: int, bucket_ms: int) -> None:
    """Refuse an empty or too long range and one that would need more than MAX_POINTS buckets."""
    if until < since:
        raise InvalidInput("until must not be before since", code=ErrorCode.INVALID_RANGE)
    if until - since > MAX_RANGE_MS:
        raise InvalidInput(f"since..until spans more than {MAX_RANGE_MS // DAY} days", code=ErrorCode.INVALID_RANGE)
    if (until - since) // bucket_ms + 1 > MAX_POINTS:
        raise InvalidInput(f"bucket {format_bucket(bucket_ms)} gives more than {MAX_POINTS} points over this range; "
                           "pick a larger bucket or use points=", code=ErrorCode.INVALID_BUCKET)


def numeric(value: Any) -> float | None:
    """A value as a number for aggregation (booleans as 0/1), None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


@dataclass(slots=True)
class Stats:
    """Mergeable aggregates of one bucket: count, sum, min, max and the first and last value with their times."""

    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    first: Any = None
    first_ts: int = 0
    last: Any = None
    last_ts: int = 0

    def add(self, ts: int, value: Any) -> None:
        """One sample (samples may come in any order)."""
        n = numeric(value)
        if n is not None:
            self.sum += n
            self.min = n if self.min is None else min(self.min, n)
            self.max = n if self.max is None else max(self.max, n)
        if self.count == 0 or ts < self.first_ts:
            self.first, self.first_ts = value, ts
        if self.count == 0 or ts >= self.last_ts:
            self.last, self.last_ts = value, ts
        self.count += 1

    def merge(self, other: Stats) -> None:
        """Fold another bucket's aggregates into this one (hourly rollups into a day, say)."""
        if other.count == 0:
            return
        if self.count == 0 or other.first_ts < self.first_ts:
            self.first, self.first_ts = other.first, other.first_ts
        if self.count == 0 or other.last_ts >= self.last_ts:
            self.last, self.last_ts = other.last, other.last_ts
        self.sum += other.sum
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        self.count += other.count

    def to_dict(self) -> dict[str, Any]:
        """What a rollup row keeps (sealed as one JSON document when the device is bound)."""
        return {"count": self.count, "sum": self.sum, "min": self.min, "max": self.max, "first": self.first,
                "first_ts": self.first_ts, "last": self.last, "last_ts": self.last_ts}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        """The inverse of to_dict."""
        return cls(int(d["count"]), float(d["sum"]), d.get("min"), d.get("max"), d.get("first"), int(d["first_ts"]),
                   d.get("last"), int(d["last_ts"]))


def bucket_start(ts: int, bucket_ms: int) -> int:
    """The start of the (UTC-aligned) bucket holding `ts`."""
    return ts - ts % bucket_ms


def bucketize(samples: Iterable[tuple[int, Any]], bucket_ms: int) -> dict[int, Stats]:
    """Samples → Stats per bucket start."""
    out: dict[int, Stats] = {}
    for ts, value in samples:
        b = bucket_start(ts, bucket_ms)
        st = out.get(b)
        if st is None:
            st = out[b] = Stats()
        st.add(ts, value)
    return out


def points_of(buckets: dict[int, Stats], agg: Agg, *, before: Stats | None = None) -> list[dict[str, Any]]:
    """One point per non-empty bucket, oldest first: {ts (bucket start), value, count}.

    `delta` is the counter's growth into each bucket: its last reading minus the previous bucket's last (or
    `before`, the last reading ahead of the range), a drop counted as a reset (the new reading is the growth).
    """
    out = []
    prev = before.last if before is not None and before.count else None
    for b in sorted(buckets):
        st = buckets[b]
        value: Any
        if agg == Agg.COUNT:
            value = st.count
        elif agg == Agg.LAST:
            value = st.last
        elif agg == Agg.MIN:
            value = st.min
        elif agg == Agg.MAX:
            value = st.max
        elif agg == Agg.AVG:
            nums = st.count if st.min is not None else 0
            value = st.sum / nums if nums else None
        else:
            last, base = numeric(st.last), numeric(prev if prev is not None else st.first)
            value = None if last is None or base is None else (last - base if last >= base else last)
            prev = st.last
        out.append({"ts": b, "value": value, "count": st.count})
    return out


def runs_of(samples: Sequence[tuple[int, Any]], until: int) -> list[dict[str, Any]]:
    """Runs of equal values (a step line): {since, until, value}, one per state change, oldest first."""
    runs: list[dict[str, Any]] = []
    for ts, value in samples:
        if runs and runs[-1]["value"] == value:
            continue
        if runs:
            runs[-1]["until"] = ts
        runs.append({"since": ts, "until": until, "value": value})
    return runs
