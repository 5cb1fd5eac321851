"""Retention as data: per product (and per property) policies, a default from the settings, and the prune job.

Each cell keeps its own copy of the policies (the operator's PUT writes every cell) and prunes its own rows.
Rows are deleted in bounded batches (`prune_batch` rows per statement and transaction), so ingest never waits long
for the write lock. On PostgreSQL, where `telemetry` and `device_events` are partitioned by day, a partition older
than the longest raw retention in effect is dropped whole first (every row in it has expired under every rule);
only the rows of shorter-lived products and properties in newer partitions are deleted in batches. Erasure and
retention never fight: erasure deletes a subject's rows (in whatever partition they are) whatever the policy, and
retention only ever deletes more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, not_, select, true

from ecohub.errors import ErrorCode, InvalidInput
from ecohub.store import Databases
from ecohub.telemetry.domain import DAY
from ecohub.telemetry.models import DeviceEvent, RetentionPolicy, Rollup, Sample
from ecohub.telemetry.partitions import Partitions

MAX_DAYS = 36_500
DidsOf = Callable[[str, str], Sequence[str]]  # (cell, model) → the dids of that product in the cell


@dataclass(frozen=True, slots=True)
class Policy:
    """A retention rule: None means "the default"."""

    model: str
    key: str  # "" for the whole product
    raw_days: int | None
    rollup_days: int | None

    def to_dict(self) -> dict[str, Any]:
        """As REST and the CLI show it."""
        return {"model": self.model, "key": self.key or None, "raw_days": self.raw_days,
                "rollup_days": self.rollup_days}


@dataclass
class PruneReport:
    """What one prune dropped in one cell."""

    cell: str
    telemetry: int = 0
    device_events: int = 0
    rollups: int = 0
    cutoffs: dict[str, int] = field(default_factory=dict)
    partitions: list[dict[str, Any]] | None = None  # the partitions dropped whole (None: the cell has none)

    def to_dict(self) -> dict[str, Any]:
        """As the CLI and the job log show it (`partitions` only where the tables are partitioned)."""
        out: dict[str, Any] = {"cell": self.cell, "telemetry": self.telemetry, "device_events": self.device_events,
                               "rollups": self.rollups}
        if self.partitions is not None:
            out["partitions"] = self.partitions
        return out


def check_days(name: str, days: int | None) -> None:
    """Refuse a retention that is not a whole number of days in 1..MAX_DAYS, naming the field."""
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"{name} must be between 1 and {MAX_DAYS} days", code=ErrorCode.INVALID_RETENTION)


class Retention:
    """Policies and pruning of the telemetry tables of every cell."""

    def __init__(self, dbs: Databases, *, raw_days: int, rollup_days: int, batch: int,
                 dids_of: DidsOf | None = None, partitions: Partitions | None = None) -> None:
        self.dbs = dbs
        self.partitions = partitions
        self.raw_days = raw_days
        self.rollup_days = rollup_days
        self.batch = batch
        self.dids_of = dids_of or (lambda cell, model: [])

    def policies(self, model: str | None = None) -> list[Policy]:
        """The operator's policies (of one product), read from the default cell's copy."""
        q = select(RetentionPolicy).order_by(RetentionPolicy.model, RetentionPolicy.key)
        if model is not None:
            q = q.where(RetentionPolicy.model == model)
        with self.dbs.cell_session(self.dbs.cells[0]) as s:
            return [Policy(p.model, p.key, p.raw_days, p.rollup_days) for p in s.scalars(q)]

    def effective(self, model: str) -> dict[str, Any]:
        """A product's retention as the job applies it: the product's days and each property's exceptions."""
        rules = {p.key: p for p in self.policies(model)}
        product = rules.pop("", None)
        raw = product.raw_days if product and product.raw_days else self.raw_days
        rollup = product.rollup_days if product and product.rollup_days else self.rollup_days
        return {"model": model, "raw_days": raw, "rollup_days": rollup,
                "default": {"raw_days": self.raw_days, "rollup_days": self.rollup_days},
                "properties": {k: {"raw_days": p.raw_days or raw, "rollup_days": p.rollup_days or rollup}
                               for k, p in rules.items()}}

    def set(self, model: str, *, key: str | None, raw_days: int | None, rollup_days: int | None, actor: str,
            now_ms: int) -> Policy:
        """Set (or with both days None, clear) a product's or property's policy in every cell."""
        check_days("raw_days", raw_days)
        check_days("rollup_days", rollup_days)
        k = key or ""
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                row = s.get(RetentionPolicy, (model, k))
                if raw_days is None and rollup_days is None:
                    if row is not None:
                        s.delete(row)
                elif row is None:
                    s.add(RetentionPolicy(model=model, key=k, raw_days=raw_days, rollup_days=rollup_days,
                                          updated_ms=now_ms, updated_by=actor))
                else:
                    row.raw_days, row.rollup_days, row.updated_ms, row.updated_by = (raw_days, rollup_days, now_ms,
                                                                                     actor)
                s.commit()
        return Policy(model, k, raw_days, rollup_days)

    def min_raw_days(self) -> int:
        """The shortest raw retention of any rule (rollups of older hours are not recomputed from raw)."""
        return min([self.raw_days] + [p.raw_days for p in self.policies() if p.raw_days])

    def max_raw_days(self) -> int:
        """The longest raw retention of any rule: a day older than this has expired for every product."""
        return max([self.raw_days] + [p.raw_days for p in self.policies() if p.raw_days])

    def prune(self, cell: str, *, now_ms: int) -> PruneReport:
        """Delete what every rule says is expired in one cell: whole partitions past the longest raw retention
        (PostgreSQL), then the rest in bounded batches; report the counts."""
        report = PruneReport(cell)
        if self.partitions is not None and self.partitions.enabled(cell):
            dropped = self.partitions.drop_before(cell, now_ms - self.max_raw_days() * DAY)
            report.partitions = dropped
            for part in dropped:
                if part["table"] == "telemetry":
                    report.telemetry += part["rows"]
                else:
                    report.device_events += part["rows"]
        rules = self.policies()
        by_model: dict[str, dict[str, Policy]] = {}
        for p in rules:
            by_model.setdefault(p.model, {})[p.key] = p
        special: list[str] = []
        for model, keys in by_model.items():
            dids = list(self.dids_of(cell, model))
            special += dids
            product = keys.get("", Policy(model, "", None, None))
            raw = now_ms - (product.raw_days or self.raw_days) * DAY
            rollup = now_ms - (product.rollup_days or self.rollup_days) * DAY
            for chunk in _chunks(dids, 500):
                for key, p in keys.items():
                    if key:
                        self._drop(cell, report, chunk, raw=now_ms - (p.raw_days or product.raw_days
                                                                      or self.raw_days) * DAY,
                                   rollup=now_ms - (p.rollup_days or product.rollup_days or self.rollup_days) * DAY,
                                   key=key, events=False)
                others = [k for k in keys if k]
                self._drop(cell, report, chunk, raw=raw, rollup=rollup, not_keys=others, events=True)
        raw = now_ms - self.raw_days * DAY
        rollup = now_ms - self.rollup_days * DAY
        self._drop(cell, report, None, raw=raw, rollup=rollup, not_dids=special, events=True)
        return report

    def _drop(self, cell: str, report: PruneReport, dids: list[str] | None, *, raw: int, rollup: int,
              key: str | None = None, not_keys: Sequence[str] = (), not_dids: Sequence[str] = (),
              events: bool) -> None:
        def scope(did_col: Any, key_col: Any | None) -> ColumnElement[bool]:
            cond: ColumnElement[bool] = true()
            if dids is not None:
                cond = and_(cond, did_col.in_(dids))
            if not_dids:
                cond = and_(cond, not_(did_col.in_(list(not_dids))))
            if key_col is not None and key is not None:
                cond = and_(cond, key_col == key)
            if key_col is not None and not_keys:
                cond = and_(cond, not_(key_col.in_(list(not_keys))))
            return cond

        report.telemetry += self._batched(cell, Sample, and_(Sample.ts < raw, scope(Sample.did, Sample.key)))
        report.rollups += self._batched(cell, Rollup, and_(Rollup.bucket + Rollup.res <= rollup,
                                                           scope(Rollup.did, Rollup.key)))
        if events:
            report.device_events += self._batched(cell, DeviceEvent,
                                                  and_(DeviceEvent.ts < raw, scope(DeviceEvent.did, None)))

    def _batched(self, cell: str, model: Any, cond: ColumnElement[bool]) -> int:
        """DELETE … WHERE id IN (the next `batch` ids matching): one short transaction each. The condition is
        repeated outside the subquery so PostgreSQL prunes the partitions the ids can be in."""
        total = 0
        while True:
            with self.dbs.cell_session(cell) as s:
                ids = select(model.id).where(cond).limit(self.batch).scalar_subquery()
                n = s.execute(delete(model).where(cond, model.id.in_(ids))).rowcount or 0  # type: ignore[attr-defined]
                s.commit()
            total += n
            if n < self.batch:
                return total


def _chunks(items: list[str], n: int) -> list[list[str]]:
    return [items[i:i + n] for i in range(0, len(items), n)]

