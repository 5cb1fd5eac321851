"""The automation engine: rules indexed by (did, key), fed by the bus after commit; runs actions off the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from croniter import croniter

from ecohub.automate.domain import (
    MISSING,
    EventTrigger,
    LoadedRule,
    OnlineTrigger,
    PropertyCondition,
    PropertyTrigger,
    ScheduleTrigger,
    property_fires,
    walk,
)
from ecohub.automate.events import RuleDeleted, RuleRan, RuleSaved
from ecohub.automate.runner import Firing, Runner
from ecohub.automate.service import AutomationService
from ecohub.bus import EventBus
from ecohub.connect.commands import CommandService
from ecohub.connect.events import EventReported, OnlineChanged, PropertiesReported
from ecohub.store import now_ms
from ecohub.twin.service import TwinService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Index:
    """An immutable snapshot of the enabled rules, keyed for O(rules touching a device) lookups."""

    rules: dict[str, LoadedRule] = field(default_factory=dict)
    props: dict[str, dict[str, list[tuple[str, PropertyTrigger]]]] = field(default_factory=dict)
    watched: dict[str, frozenset[str]] = field(default_factory=dict)  # keys whose last value the engine keeps
    events: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    online: dict[str, list[tuple[str, OnlineTrigger]]] = field(default_factory=dict)
    schedules: list[tuple[str, ScheduleTrigger]] = field(default_factory=list)


def build_index(rules: dict[str, LoadedRule]) -> Index:
    """Index rules by what fires them and by what their conditions read."""
    props: dict[str, dict[str, list[tuple[str, PropertyTrigger]]]] = defaultdict(lambda: defaultdict(list))
    watched: dict[str, set[str]] = defaultdict(set)
    events: dict[tuple[str, str], list[str]] = defaultdict(list)
    online: dict[str, list[tuple[str, OnlineTrigger]]] = defaultdict(list)
    schedules: list[tuple[str, ScheduleTrigger]] = []
    for rid, rule in rules.items():
        for t in rule.spec.triggers:
            if isinstance(t, PropertyTrigger):
                props[t.did][t.key].append((rid, t))
                watched[t.did].add(t.key)
            elif isinstance(t, EventTrigger):
                events[(t.did, t.key)].append(rid)
            elif isinstance(t, OnlineTrigger):
                online[t.did].append((rid, t))
            else:
                schedules.append((rid, t))
        if rule.spec.conditions is not None:
            for c in walk(rule.spec.conditions):
                if isinstance(c, PropertyCondition):
                    watched[c.did].add(c.key)
    return Index(dict(rules), {d: dict(k) for d, k in props.items()}, {d: frozenset(k) for d, k in watched.items()},
                 dict(events), dict(online), schedules)


@dataclass(slots=True)
class EngineStats:
    """Counters a user can read to see rules working (or being held back)."""

    matched: int = 0
    fired: int = 0
    conditions_false: int = 0
    failed: int = 0
    rate_limited: int = 0
    overloaded: int = 0
    history_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class AutomationEngine:
    """Subscribes to device events, fires matching rules, rate-limits them, runs actions in tasks, keeps history."""

    def __init__(self, *, service: AutomationService, bus: EventBus, twin: TwinService,
                 commands: Callable[[], CommandService | None], max_queue: int = 10_000, concurrency: int = 16,
                 poll_s: float = 5.0, flush_s: float = 0.25, command_timeout_s: float = 10.0,
                 webhook_timeout_s: float = 5.0) -> None:
        self.service = service
        self.bus = bus
        self.twin = twin
        self.commands = commands
        self.stats = EngineStats()
        self.index = Index()
        self.values: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._queue: asyncio.Queue[Firing] = asyncio.Queue(max_queue)
        self._concurrency = asyncio.Semaphore(concurrency)
        self._history: list[tuple[str, dict[str, Any]]] = []
        self._since_trim: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fingerprints: dict[str, Any] = {}
        self.poll_s, self.flush_s = poll_s, flush_s
        self._http = httpx.AsyncClient(timeout=webhook_timeout_s, follow_redirects=False,
                                       headers={"User-Agent": "ecohub-automations/1"})
        self.runner = Runner(twin=twin, values=self.values, commands=commands, chain=self._chain, http=self._http,
                             url_policy=service.url_policy, notifications=service.notifications,
                             command_timeout_s=command_timeout_s)
        self._subscriptions: list[tuple[type, Callable[[Any], Any]]] = [
            (PropertiesReported, self.on_properties), (EventReported, self.on_event),
            (OnlineChanged, self.on_online), (RuleSaved, self.on_rule_saved), (RuleDeleted, self.on_rule_deleted)]

    # -------------------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> AutomationEngine:
        await asyncio.to_thread(self.reload)
        for event_type, handler in self._subscriptions:
            self.bus.subscribe(event_type, handler)
        self.service.engine = self
        for name, coro in (("automate-runner", self._run_queue()), ("automate-scheduler", self._schedule()),
                           ("automate-history", self._flush_forever()), ("automate-reload", self._poll())):
            self._tasks.add(asyncio.create_task(coro, name=name))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for event_type, handler in self._subscriptions:
            self.bus.unsubscribe(event_type, handler)
        if self.service.engine is self:
            self.service.engine = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._flush()
        await self._http.aclose()

    def _swap(self, rules: dict[str, LoadedRule]) -> None:
        """Install a new index (one attribute store: readers on the loop see the old or the new, never half)."""
        index = build_index(rules)
        before = self.index.watched
        cells = {did: r.cell for r in rules.values() for did in r.spec.devices()}
        for did, keys in index.watched.items():  # seed "previous value" so a threshold fires on a real crossing
            # keys watched before are kept current by on_properties; only newly watched ones need the twin
            new = [k for k in keys if k not in before.get(did, ()) and (did, k) not in self.values]
            if not new:
                continue
            props = self.twin.get(cells[did], did)["properties"]
            for k in new:
                if k in props:
                    self.values.setdefault((did, k), props[k]["value"])
        self.index = index

    def reload(self) -> None:
        """Load every enabled rule of every cell (start-up, and when another process changed rules)."""
        with self._lock:
            rules: dict[str, LoadedRule] = {}
            for cell in self.service.dbs.cells:
                self._fingerprints[cell] = self.service.fingerprint(cell)
                rules.update({r.rule_id: r for r in self.service.enabled_rules(cell)})
            self._swap(rules)

    def on_rule_saved(self, event: RuleSaved) -> None:
        """Reload one rule (it may now be disabled)."""
        with self._lock:
            rules = dict(self.index.rules)
            rules.pop(event.rule_id, None)
            rules.update({r.rule_id: r for r in self.service.enabled_rules(event.cell, [event.rule_id])})
            self._swap(rules)

    def on_rule_deleted(self, event: RuleDeleted) -> None:
        """Forget a rule."""
        with self._lock:
            rules = dict(self.index.rules)
            if rules.pop(event.rule_id, None) is not None:
                self._swap(rules)

    # ---------------------------------------------------------------------------- the hot path (sync)

    def on_properties(self, event: PropertiesReported) -> None:
        """Compare reported values with the previous ones for indexed keys only; enqueue the rules that fire."""
        index = self.index
        watched = index.watched.get(event.did)
        if watched is None:
            return
        triggers = index.props.get(event.did)
        values = self.values
        for key, value in event.values.items():
            if key not in watched:
                continue
            previous = values.get((event.did, key), MISSING)
            values[(event.did, key)] = value
            if triggers is None:
                continue
            for rid, trigger in triggers.get(key, ()):
                if property_fires(trigger, previous, value):
                    why = {"type": "property", "did": event.did, "prop": key, "value": value,
                           "previous": None if previous is MISSING else previous, "ts": event.ts}
                    if trigger.op is not None:
                        why["threshold"] = f"{trigger.op.value} {trigger.value}"
                    self.fire(index.rules[rid], why)

    def on_event(self, event: EventReported) -> None:
        """Fire the rules waiting for this device event."""
        index = self.index  # one read: a rule save on another thread swaps it whole
        rids = index.events.get((event.did, f"{event.siid}.{event.eiid}"))
        for rid in rids or ():
            self.fire(index.rules[rid], {"type": "event", "did": event.did, "event": f"{event.siid}.{event.eiid}",
                                              "arguments": event.arguments, "ts": event.ts})

    def on_online(self, event: OnlineChanged) -> None:
        """Fire the rules waiting for this device to come online or go offline."""
        index = self.index
        for rid, trigger in index.online.get(event.did, ()):
            if trigger.online is None or trigger.online == event.online:
                self.fire(index.rules[rid], {"type": "online", "did": event.did, "online": event.online,
                                                  "ts": event.ts})

    def fire(self, rule: LoadedRule, why: dict[str, Any], *, skip_conditions: bool = False, depth: int = 0) -> str:
        """Admit a firing past the rule's rate limit into the queue; → queued, rate_limited or overloaded."""
        self.stats.matched += 1
        firing = Firing(rule, why, skip_conditions=skip_conditions, depth=depth)
        if not self._admit(rule):
            self.stats.rate_limited += 1
            self._record(firing, "rate_limited", note=f"over {rule.spec.max_runs_per_minute} runs per minute")
            return "rate_limited"
        try:
            self._queue.put_nowait(firing)
        except asyncio.QueueFull:
            self.stats.overloaded += 1
            self._record(firing, "overloaded", note="the automation queue is full")
            return "overloaded"
        return "queued"

    def _admit(self, rule: LoadedRule) -> bool:
        now = time.monotonic()
        window = self._windows[rule.rule_id]
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= rule.spec.max_runs_per_minute:
            return False
        window.append(now)
        return True

    def _chain(self, firing: Firing) -> dict[str, Any]:
        target = self.index.rules.get(firing.rule.rule_id)
        if target is None or target.home_id != firing.rule.home_id:
            return {"ok": False, "error": "rule_not_enabled"}
        status = self.fire(target, firing.trigger, skip_conditions=firing.skip_conditions, depth=firing.depth)
        return {"ok": status == "queued", "status": status}

    # ------------------------------------------------------------------------------------- running

    async def _run_queue(self) -> None:
        while True:
            firing = await self._queue.get()
            await self._concurrency.acquire()
            task = asyncio.create_task(self._run(firing), name=f"automation-{firing.rule.rule_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, firing: Firing) -> None:
        try:
            record = await self.runner.execute(firing)
            self._count(record["outcome"])
            self._history.append((firing.rule.cell, record))
            self.bus.publish([RuleRan(firing.rule.rule_id, firing.rule.home_id, firing.rule.cell, record["outcome"])])
        except Exception:
            log.exception("automation %s failed outside its actions", firing.rule.rule_id)
            self.stats.failed += 1
            self._record(firing, "failed", note="internal error; see the hub log")
        finally:
            self._concurrency.release()

    def _count(self, outcome: str) -> None:
        if outcome == "fired":
            self.stats.fired += 1
        elif outcome == "conditions_false":
            self.stats.conditions_false += 1
        else:
            self.stats.failed += 1

    def _record(self, firing: Firing, outcome: str, *, note: str) -> None:
        self._history.append((firing.rule.cell, {
            "rule_id": firing.rule.rule_id, "ts_ms": firing.ts_ms, "outcome": outcome,
            "trigger": {**firing.trigger, "note": note}, "conditions": None, "actions": None, "duration_ms": 0}))

    async def run_now(self, rule: LoadedRule, *, actor: str, skip_conditions: bool = False) -> dict[str, Any]:
        """Run a rule by hand (rate limit included); the run is stored before this returns."""
        firing = Firing(rule, {"type": "manual", "by": actor}, skip_conditions=skip_conditions)
        if not self._admit(rule):
            self.stats.rate_limited += 1
            self._record(firing, "rate_limited", note=f"over {rule.spec.max_runs_per_minute} runs per minute")
            record = self._history[-1][1]
        else:
            record = await self.runner.execute(firing)
            self._count(record["outcome"])
            self._history.append((rule.cell, record))
        await self._flush()
        return {k: v for k, v in record.items() if k != "rule_id"} | {"rule_id": rule.rule_id}

    # ------------------------------------------------------------------------------------ schedules

    def tick(self, minute: datetime) -> int:
        """Fire every schedule trigger matching this minute (in each rule's time zone); → how many fired."""
        fired = 0
        for rid, trigger in self.index.schedules:
            rule = self.index.rules.get(rid)
            if rule is None:
                continue
            local = minute.astimezone(ZoneInfo(rule.spec.tz))
            if croniter.match(trigger.cron, local):
                self.fire(rule, {"type": "schedule", "cron": trigger.cron, "at": local.isoformat()})
                fired += 1
        return fired

    async def _schedule(self) -> None:
        last = datetime.now(UTC).replace(second=0, microsecond=0)
        while True:
            now = datetime.now(UTC)
            nxt = last + timedelta(minutes=1)
            await asyncio.sleep(max(0.0, (nxt - now).total_seconds()) + 0.01)
            current = datetime.now(UTC).replace(second=0, microsecond=0)
            # a late wake-up (suspend, overload) catches up on a few missed minutes, never on hours
            minute = max(last + timedelta(minutes=1), current - timedelta(minutes=5))
            while minute <= current:
                self.tick(minute)
                minute += timedelta(minutes=1)
            last = current

    # --------------------------------------------------------------------------- history and reload

    async def _flush(self) -> None:
        batch, self._history = self._history, []
        by_cell: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for cell, record in batch:
            by_cell[cell].append(record)
        for cell, records in by_cell.items():
            trim = set()
            for r in records:
                self._since_trim[r["rule_id"]] += 1
                if self._since_trim[r["rule_id"]] >= 50:
                    trim.add(r["rule_id"])
                    self._since_trim[r["rule_id"]] = 0
            try:
                await asyncio.to_thread(self.service.record_runs, cell, records, trim=trim)
            except Exception as err:
                self.stats.history_errors += 1
                log.error("could not store %d automation runs of cell %s: %s", len(records), cell, err)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            if self._history:
                await self._flush()

    async def _poll(self) -> None:
        """Pick up rules changed by other processes (API workers) by a cheap per-cell fingerprint."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                changed = False
                for cell in self.service.dbs.cells:
                    fp = await asyncio.to_thread(self.service.fingerprint, cell)
                    changed |= fp != self._fingerprints.get(cell)
                if changed:
                    await asyncio.to_thread(self.reload)
            except Exception as err:
                log.error("could not check automations for changes: %s", err)

    def snapshot(self) -> dict[str, Any]:
        """What the engine holds: rule and index sizes, queue depth, counters."""
        return {"rules": len(self.index.rules), "devices": len(self.index.watched), "queued": self._queue.qsize(),
                "schedules": len(self.index.schedules), "ts": now_ms(), **self.stats.to_dict()}
