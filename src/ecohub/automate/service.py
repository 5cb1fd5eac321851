"""Use cases of automations: save (validated, loop-free), list, enable, delete, run now, run history."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from ecohub.auth import Principal, Role, Scope
from ecohub.automate.domain import LoadedRule, RuleRunner, RuleSpec, RunRuleAction, WebhookAction, find_loop
from ecohub.automate.events import RuleDeleted, RuleSaved
from ecohub.automate.models import AutomationRule, AutomationRun
from ecohub.automate.parse import Stored, bad, parse_rule, rule_doc
from ecohub.automate.resolver import HomeResolver, not_found_rule
from ecohub.automate.scenes import SceneService
from ecohub.bus import EventBus
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import Conflict, EcohubError, ErrorCode, InvalidInput, Unavailable
from ecohub.home.domain import HomeRole
from ecohub.home.events import DeviceUnbound
from ecohub.home.homes import HomeService
from ecohub.netguard import UrlPolicy
from ecohub.notify.service import NotificationService
from ecohub.store import Databases, aware, utcnow

MAX_RULES_PER_HOME = 200
KEEP_RUNS = 200


def _iso(ts: datetime) -> str:
    return aware(ts).isoformat()


def stored_spec(definition: dict[str, Any]) -> RuleSpec:
    """The rule value of a stored (already checked) document."""
    return parse_rule(definition, Stored())


WRITE = Scope.AUTOMATIONS_WRITE  # what an app token needs here (user tokens are not limited by scopes)


def creator(p: Principal) -> str:
    """Who a rule is recorded as created by: the user, or for an app the grant it acted under."""
    return f"grant:{p.grant_id}" if p.role == Role.APP else p.subject


class AutomationService:
    """Rules of a home: every device they name is bound to the home; saved only when valid and loop-free."""

    def __init__(self, dbs: Databases, bus: EventBus, *, homes: HomeService, devices: DeviceService,
                 products: ProductService, url_policy: UrlPolicy | None = None,
                 notifications: NotificationService | None = None) -> None:
        self.url_policy = url_policy or UrlPolicy()
        self.notifications = notifications  # where `notify` actions store what they say
        self.dbs = dbs
        self.bus = bus
        self.homes = homes
        self.devices = devices
        self.products = products
        self.engine: RuleRunner | None = None  # the engine of the hub that runs one attaches itself
        self.scenes = SceneService(dbs, homes=homes, devices=devices, products=products)
        bus.subscribe(DeviceUnbound, self.on_device_unbound)

    # -------------------------------------------------------------------------------------- access

    def require_rule(self, p: Principal, rule_id: str, least: HomeRole) -> AutomationRule:
        """The rule, if the caller has at least `least` in its home; unknown otherwise (others' rules are hidden)."""
        cell = self.homes.cell_of(p, WRITE)
        with self.dbs.cell_session(cell) as s:
            row = s.get(AutomationRule, rule_id)
        if row is None or (p.role == Role.APP and row.created_by != creator(p)):  # an app: only its own rules
            raise not_found_rule(rule_id)
        try:
            role = self.homes.role_in(p, row.home_id, WRITE)
        except EcohubError:
            raise not_found_rule(rule_id) from None
        if role < least:
            self.homes.require(p, row.home_id, least, WRITE)
        return row

    # ------------------------------------------------------------------------------------ use cases

    def _check(self, p: Principal, home_id: str, doc: dict[str, Any], rule_id: str) -> RuleSpec:
        """Parse and check against the specs; refuse loops through this rule among the home's enabled rules."""
        resolver = HomeResolver(p, home_id, homes=self.homes, devices=self.devices, products=self.products)
        spec = parse_rule(doc, resolver)
        others = self._home_rules(self.homes.cell_of(p, WRITE), home_id)
        for i, action in enumerate(spec.actions):
            if isinstance(action, WebhookAction):
                try:
                    self.url_policy.check(action.url)
                except InvalidInput as err:
                    raise bad(f"actions[{i}].url", err.message, code=ErrorCode.UNSAFE_URL) from err
            if isinstance(action, RunRuleAction) and action.rule_id not in others and action.rule_id != rule_id:
                raise bad(f"actions[{i}].rule_id", f"no rule {action.rule_id} in this home",
                          code=ErrorCode.UNKNOWN_RULE)
        graph = {rid: r.spec for rid, (r, enabled) in others.items() if enabled and rid != rule_id}
        graph[rule_id] = spec
        cycle = find_loop(graph, rule_id)
        if cycle is not None:
            names = [graph[r].name for r in cycle]
            raise Conflict("this rule would trigger itself: " + " → ".join(names),
                           code=ErrorCode.RULE_LOOP, cycle=cycle)
        return spec

    def _home_rules(self, cell: str, home_id: str) -> dict[str, tuple[LoadedRule, bool]]:
        with self.dbs.cell_session(cell) as s:
            rows = s.scalars(select(AutomationRule).where(AutomationRule.home_id == home_id)).all()
        return {r.id: (LoadedRule(r.id, r.home_id, cell, stored_spec(r.definition)), r.enabled) for r in rows}

    def create(self, p: Principal, home_id: str, doc: dict[str, Any], *, enabled: bool = True) -> dict[str, Any]:
        """Save a new rule in a home (owner or member)."""
        self.homes.require(p, home_id, HomeRole.MEMBER, WRITE)
        cell = self.homes.cell_of(p, WRITE)
        rule_id = secrets.token_hex(8)
        spec = self._check(p, home_id, doc, rule_id) if enabled else parse_rule(
            doc, HomeResolver(p, home_id, homes=self.homes, devices=self.devices, products=self.products))
        with self.dbs.cell_session(cell) as s:
            count = s.scalar(select(func.count()).select_from(AutomationRule).where(AutomationRule.home_id == home_id))
            if (count or 0) >= MAX_RULES_PER_HOME:
                raise Conflict(f"a home holds at most {MAX_RULES_PER_HOME} automations", code=ErrorCode.TOO_MANY_RULES)
            s.add(AutomationRule(id=rule_id, home_id=home_id, name=spec.name, enabled=enabled,
                                 definition=rule_doc(spec), created_by=creator(p)))
        self.bus.publish([RuleSaved(rule_id, home_id, cell)])
        return self.get(p, rule_id)

    def update(self, p: Principal, rule_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Replace a rule's definition (owner or member); checked as on creation."""
        row = self.require_rule(p, rule_id, HomeRole.MEMBER)
        spec = self._check(p, row.home_id, doc, rule_id)
        cell = self.homes.cell_of(p, WRITE)
        with self.dbs.cell_session(cell) as s:
            s.execute(update(AutomationRule).where(AutomationRule.id == rule_id).values(
                name=spec.name, definition=rule_doc(spec), updated_at=utcnow(), version=AutomationRule.version + 1))
        self.bus.publish([RuleSaved(rule_id, row.home_id, cell)])
        return self.get(p, rule_id)

    def set_enabled(self, p: Principal, rule_id: str, enabled: bool) -> dict[str, Any]:
        """Enable (checked again: devices still bound, no loop) or disable a rule."""
        row = self.require_rule(p, rule_id, HomeRole.MEMBER)
        if enabled:
            self._check(p, row.home_id, row.definition, rule_id)
        cell = self.homes.cell_of(p, WRITE)
        with self.dbs.cell_session(cell) as s:
            s.execute(update(AutomationRule).where(AutomationRule.id == rule_id).values(
                enabled=enabled, disabled_reason=None if enabled else "disabled by a user", updated_at=utcnow()))
        self.bus.publish([RuleSaved(rule_id, row.home_id, cell)])
        return self.get(p, rule_id)

    def delete(self, p: Principal, rule_id: str) -> None:
        """Delete a rule and its history (owner or member)."""
        row = self.require_rule(p, rule_id, HomeRole.MEMBER)
        cell = self.homes.cell_of(p, WRITE)
        with self.dbs.cell_session(cell) as s:
            s.execute(delete(AutomationRun).where(AutomationRun.rule_id == rule_id))
            s.execute(delete(AutomationRule).where(AutomationRule.id == rule_id))
        self.bus.publish([RuleDeleted(rule_id, row.home_id, cell)])

    @staticmethod
    def view(row: AutomationRule) -> dict[str, Any]:
        """A rule as the API shows it."""
        return {"rule_id": row.id, "home_id": row.home_id, "enabled": row.enabled,
                "disabled_reason": row.disabled_reason, "version": row.version, "created_by": row.created_by,
                "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at), **row.definition}

    def get(self, p: Principal, rule_id: str) -> dict[str, Any]:
        """One rule (anyone in its home)."""
        return self.view(self.require_rule(p, rule_id, HomeRole.GUEST))

    def of_home(self, p: Principal, home_id: str) -> list[dict[str, Any]]:
        """The home's rules (anyone in the home)."""
        self.homes.require(p, home_id, HomeRole.GUEST, WRITE)
        with self.dbs.cell_session(self.homes.cell_of(p, WRITE)) as s:
            rows = s.scalars(select(AutomationRule).where(AutomationRule.home_id == home_id)
                             .order_by(AutomationRule.created_at)).all()
        return [self.view(r) for r in rows if p.role != Role.APP or r.created_by == creator(p)]

    def runs(self, p: Principal, rule_id: str, *, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        """The rule's run history, newest first: trigger, conditions with values, each action's result
        (`before`: only runs older than that run id, the next page of a walk)."""
        self.require_rule(p, rule_id, HomeRole.GUEST)
        limit = max(1, min(limit, KEEP_RUNS + 1))
        q = select(AutomationRun).where(AutomationRun.rule_id == rule_id)
        if before is not None:
            q = q.where(AutomationRun.id < before)
        with self.dbs.cell_session(self.homes.cell_of(p, WRITE)) as s:
            rows = s.scalars(q.order_by(AutomationRun.id.desc()).limit(limit)).all()
        return [{"run_id": r.id, "ts": r.ts_ms, "outcome": r.outcome, "trigger": r.trigger,
                 "conditions": r.conditions, "actions": r.actions, "duration_ms": r.duration_ms} for r in rows]

    async def run_now(self, p: Principal, rule_id: str, *, skip_conditions: bool = False) -> dict[str, Any]:
        """Run a rule at once (owner or member), as if triggered; → the run record."""
        row = self.require_rule(p, rule_id, HomeRole.MEMBER)
        if self.engine is None:
            raise Unavailable("no automation engine runs in this process", code=ErrorCode.AUTOMATIONS_UNAVAILABLE)
        rule = LoadedRule(row.id, row.home_id, self.homes.cell_of(p, WRITE), stored_spec(row.definition))
        return await self.engine.run_now(rule, actor=p.actor, skip_conditions=skip_conditions)

    # ----------------------------------------------------------------------------- engine-facing

    def on_device_unbound(self, event: DeviceUnbound) -> None:
        """A device left the home: its rules stop (a next owner's device is never driven by this home)."""
        with self.dbs.cell_session(event.cell) as s:
            rows = s.scalars(select(AutomationRule).where(AutomationRule.home_id == event.home_id,
                                                          AutomationRule.enabled.is_(True))).all()
            hit = [r for r in rows if event.did in stored_spec(r.definition).devices()]
            for r in hit:
                r.enabled, r.disabled_reason, r.updated_at = False, f"device {event.did} was unbound", utcnow()
        self.bus.publish([RuleSaved(r.id, r.home_id, event.cell) for r in hit])

    def disable_grant(self, cell: str, grant_id: str) -> int:
        """A user withdrew an app's access: the rules the app created under that grant stop; → how many."""
        with self.dbs.cell_session(cell) as s:
            hit = s.scalars(select(AutomationRule).where(AutomationRule.created_by == f"grant:{grant_id}",
                                                         AutomationRule.enabled.is_(True))).all()
            for r in hit:
                r.enabled, r.disabled_reason, r.updated_at = False, "the app's access was withdrawn", utcnow()
            saved = [RuleSaved(r.id, r.home_id, cell) for r in hit]
        self.bus.publish(saved)
        return len(saved)

    def enabled_rules(self, cell: str, rule_ids: list[str] | None = None) -> list[LoadedRule]:
        """Enabled rules of a cell (or the named ones if enabled)."""
        q = select(AutomationRule).where(AutomationRule.enabled.is_(True))
        if rule_ids is not None:
            q = q.where(AutomationRule.id.in_(rule_ids))
        with self.dbs.cell_session(cell) as s:
            rows = s.scalars(q).all()
        return [LoadedRule(r.id, r.home_id, cell, stored_spec(r.definition)) for r in rows]

    def fingerprint(self, cell: str) -> tuple[int, str | None, int]:
        """Changes when any rule of the cell is added, changed or deleted (engines in other processes poll it)."""
        with self.dbs.cell_session(cell) as s:
            n, latest, versions = s.execute(select(func.count(), func.max(AutomationRule.updated_at),
                                                   func.sum(AutomationRule.version))).one()
        return int(n or 0), str(latest) if latest else None, int(versions or 0)

    def record_runs(self, cell: str, runs: list[dict[str, Any]], *,
                    trim: set[str] | frozenset[str] = frozenset()) -> None:
        """Append run records in one transaction; for the rules in `trim`, keep only the newest KEEP_RUNS."""
        if not runs:
            return
        with self.dbs.cell_session(cell) as s:
            known = set(s.scalars(select(AutomationRule.id).where(
                AutomationRule.id.in_({r["rule_id"] for r in runs}))))
            rows = [r for r in runs if r["rule_id"] in known]  # a rule deleted meanwhile takes its runs with it
            if rows:
                s.execute(insert(AutomationRun), rows)
            for rule_id in trim & known:
                cutoff = s.scalar(select(AutomationRun.id).where(AutomationRun.rule_id == rule_id)
                                  .order_by(AutomationRun.id.desc()).offset(KEEP_RUNS).limit(1))
                if cutoff is not None:
                    s.execute(delete(AutomationRun).where(AutomationRun.rule_id == rule_id,
                                                          AutomationRun.id <= cutoff))
