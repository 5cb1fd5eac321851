"""Running one firing of a rule: conditions on the last known values, then each action in order, with results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ecohub.automate.domain import (
    MISSING,
    Action,
    CallAction,
    LoadedRule,
    NotifyAction,
    PropertyCondition,
    RunRuleAction,
    SetAction,
    WebhookAction,
    evaluate,
    walk,
)
from ecohub.connect.commands import CommandService
from ecohub.errors import EcohubError, InvalidInput
from ecohub.netguard import UrlPolicy
from ecohub.notify.service import NotificationService
from ecohub.protocol import Method
from ecohub.store import now_ms
from ecohub.twin.service import TwinService

MAX_CHAIN = 8  # run-rule depth; loops are refused at save time, this only bounds what a race could build


@dataclass(slots=True)
class Firing:
    """A rule whose trigger matched (or that was run by hand or by another rule), and why."""

    rule: LoadedRule
    trigger: dict[str, Any]
    ts_ms: int = field(default_factory=now_ms)
    skip_conditions: bool = False
    depth: int = 0


class Runner:
    """Evaluates a firing's conditions and runs its actions: device commands, other rules, webhooks."""

    def __init__(self, *, twin: TwinService, values: dict[tuple[str, str], Any],
                 commands: Callable[[], CommandService | None], chain: Callable[[Firing], dict[str, Any]],
                 http: httpx.AsyncClient, command_timeout_s: float = 10.0, url_policy: UrlPolicy | None = None,
                 notifications: NotificationService | None = None) -> None:
        self.twin = twin
        self.notifications = notifications
        self.url_policy = url_policy or UrlPolicy()
        self.values = values
        self.commands = commands
        self.chain = chain
        self.http = http
        self.command_timeout_s = command_timeout_s

    async def _lookup_table(self, f: Firing) -> dict[tuple[str, str], Any]:
        """The values the conditions read: the engine's last seen values, else the twin (read off the loop)."""
        conds = walk(f.rule.spec.conditions) if f.rule.spec.conditions is not None else []
        wanted = {(c.did, c.key) for c in conds if isinstance(c, PropertyCondition)}
        table = {k: self.values.get(k, MISSING) for k in wanted}
        missing = sorted({did for (did, _k), v in table.items() if v is MISSING})
        for did in missing:
            twin = await asyncio.to_thread(self.twin.get, f.rule.cell, did)
            for (d, k) in wanted:
                if d == did and k in twin["properties"]:
                    table[(d, k)] = twin["properties"][k]["value"]
        return table

    async def execute(self, f: Firing) -> dict[str, Any]:
        """Run a firing to its end; → the run record (outcome, trigger, conditions, action results)."""
        t0 = time.perf_counter()
        spec = f.rule.spec
        record: dict[str, Any] = {"rule_id": f.rule.rule_id, "ts_ms": f.ts_ms, "trigger": f.trigger,
                                  "conditions": None, "actions": None}
        if f.skip_conditions:
            ok, why = True, {"result": True, "why": "skipped"}
        else:
            table = await self._lookup_table(f)
            ok, why = evaluate(spec.conditions, lambda did, key: table.get((did, key), MISSING),
                               datetime.now(ZoneInfo(spec.tz)))
        record["conditions"] = why
        if not ok:
            record["outcome"] = "conditions_false"
        else:
            results = []
            for i, action in enumerate(spec.actions):
                results.append({"index": i, **await self._act(action, f)})
            record["actions"] = results
            record["outcome"] = "fired" if all(r["ok"] for r in results) else "failed"
        record["duration_ms"] = int((time.perf_counter() - t0) * 1000)
        return record

    async def _act(self, action: Action, f: Firing) -> dict[str, Any]:
        try:
            if isinstance(action, SetAction):
                params = [{"siid": int(k.split(".")[0]), "piid": int(k.split(".")[1]), "value": v}
                          for k, v in action.values.items()]
                return await self._command(action.did, Method.SET_PROPERTIES, params, f, "set")
            if isinstance(action, CallAction):
                siid, aiid = (int(x) for x in action.key.split("."))
                call = {"siid": siid, "aiid": aiid, "in": [{"piid": p, "value": v} for p, v in action.inputs.items()]}
                return await self._command(action.did, Method.ACTION, call, f, "action")
            if isinstance(action, RunRuleAction):
                if f.depth >= MAX_CHAIN:
                    return {"type": "run_rule", "ok": False, "rule_id": action.rule_id, "error": "chain_too_long"}
                return {"type": "run_rule", "rule_id": action.rule_id, **self.chain(self._chained(action, f))}
            if isinstance(action, NotifyAction):
                return await asyncio.to_thread(self._notify, action, f)
            return await self._webhook(action, f)
        except EcohubError as err:
            return {"type": type(action).__name__, "ok": False, "error": err.code, "message": err.message}
        except Exception as err:  # an action's failure is recorded in the run, never lost
            return {"type": type(action).__name__, "ok": False, "error": type(err).__name__, "message": str(err)}

    def _chained(self, action: RunRuleAction, f: Firing) -> Firing:
        # the engine swaps in the target's current spec; a rule of another home is never reached this way
        target = LoadedRule(action.rule_id, f.rule.home_id, f.rule.cell, f.rule.spec)
        return Firing(target, {"type": "run_rule", "by": f.rule.rule_id}, skip_conditions=action.skip_conditions,
                      depth=f.depth + 1)

    async def _command(self, did: str, method: str, params: Any, f: Firing, kind: str) -> dict[str, Any]:
        commands = self.commands()
        if commands is None:
            return {"type": kind, "did": did, "ok": False, "error": "commands_unavailable"}
        reply = await commands.send(did, method, params, actor=f"automation:{f.rule.rule_id}",
                                    timeout_s=self.command_timeout_s)
        result = reply.get("result")
        codes = [r.get("code", 0) for r in result if isinstance(r, dict)] if isinstance(result, list) else (
            [result.get("code", 0)] if isinstance(result, dict) else [])
        ok = reply.get("status") == "replied" and all(c == 0 for c in codes)
        out = {"type": kind, "did": did, "ok": ok, "command_id": reply.get("command_id"), "status": reply.get("status")}
        if "error" in reply:
            out["error"] = reply["error"]
        elif not ok:
            out["codes"] = codes
        return out

    async def _webhook(self, action: WebhookAction, f: Firing) -> dict[str, Any]:
        payload = {"rule_id": f.rule.rule_id, "rule": f.rule.spec.name, "home_id": f.rule.home_id,
                   "trigger": f.trigger, "ts": f.ts_ms, "data": dict(action.body) if action.body else None}
        try:
            # checked again at send time: the name may resolve to a private address by now (DNS rebinding)
            await asyncio.to_thread(self.url_policy.check, action.url)
        except InvalidInput as err:
            return {"type": "webhook", "ok": False, "error": "unsafe_url", "message": err.message}
        try:
            r = await self.http.post(action.url, json=payload)
        except httpx.HTTPError as err:
            return {"type": "webhook", "ok": False, "error": type(err).__name__, "message": str(err)[:200]}
        return {"type": "webhook", "ok": 200 <= r.status_code < 300, "status": r.status_code}

    def _notify(self, action: NotifyAction, f: Firing) -> dict[str, Any]:
        """Store the rule's message for the people of its home (worded from the firing)."""
        if self.notifications is None:
            return {"type": "notify", "ok": False, "error": "notifications_unavailable"}
        cell, t = f.rule.cell, f.trigger
        did = t.get("did")
        homes = self.notifications.homes
        online = t.get("online")
        fields = _Fields(rule=f.rule.spec.name, did=did or "", prop=t.get("prop", ""), event=t.get("event", ""),
                         value=_word(t.get("value")), previous=_word(t.get("previous")),
                         online="" if online is None else ("online" if online else "offline"))
        fields["device"] = (homes.device_names(cell, [did]).get(did) or did) if did else ""
        fields["home"] = homes.home_name(cell, f.rule.home_id) or ""
        body = action.message.format_map(fields)
        title = action.title.format_map(fields) if action.title else f.rule.spec.name
        stored = self.notifications.notify_home(cell, f.rule.home_id, kind="automation", title=title, body=body,
                                                severity=action.severity, did=did)
        return {"type": "notify", "ok": True, "notified": len(stored)}


class _Fields(dict[str, str]):
    """Template fields; one the firing lacks is empty (a schedule has no device), never a KeyError."""

    def __missing__(self, key: str) -> str:
        return ""


def _word(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
