"""Rule documents (what the API takes and stores) to rule values and back; every refusal names its path."""

from __future__ import annotations

import string
from datetime import time
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ecohub.automate.domain import (
    NOTIFY_FIELDS,
    Action,
    AllOf,
    AnyOf,
    CallAction,
    Condition,
    EventTrigger,
    NotifyAction,
    NotOf,
    OnlineTrigger,
    Op,
    PropertyCondition,
    PropertyTrigger,
    RuleSpec,
    RunRuleAction,
    ScheduleTrigger,
    SetAction,
    TimeCondition,
    Trigger,
    WebhookAction,
)
from ecohub.errors import ErrorCode, InvalidInput

MAX_TRIGGERS, MAX_ACTIONS, MAX_LEAVES, MAX_DEPTH, MAX_RATE = 20, 20, 50, 5, 600


class Resolver(Protocol):
    """Resolves device references against each device's spec (names or raw keys) and checks values."""

    def property(self, did: str, ref: str, path: str, *, write: bool) -> str:
        """The canonical `siid.piid` of a property the device has (writable when `write`)."""

    def check(self, did: str, key: str, value: Any, path: str) -> None:
        """Refuse a value the property cannot take."""

    def event(self, did: str, ref: str, path: str) -> str:
        """The canonical `siid.eiid` of an event the device has."""

    def action(self, did: str, ref: str, inputs: dict[int, Any], path: str) -> str:
        """The canonical `siid.aiid` of an action, with its inputs checked."""


def bad(path: str, message: str, code: ErrorCode = ErrorCode.INVALID_RULE) -> InvalidInput:
    """An InvalidInput naming where in the rule document the problem is."""
    return InvalidInput(f"{path}: {message}", code=code, path=path)


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(path, "must be an object")
    return value


def _str(obj: dict[str, Any], key: str, path: str, *, max_len: int = 200) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise bad(f"{path}.{key}", f"must be a non-empty string of at most {max_len} characters")
    return value.strip()


def _op(obj: dict[str, Any], path: str, *, required: bool) -> Op | None:
    raw = obj.get("op")
    if raw is None and not required:
        return None
    try:
        op = Op(str(raw))
    except ValueError:
        raise bad(f"{path}.op", f"must be one of {', '.join(o.value for o in Op)}") from None
    if "value" not in obj:
        raise bad(f"{path}.value", "is required with op")
    return op


def _hhmm(raw: Any, path: str) -> time:
    try:
        hh, mm = str(raw).split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise bad(path, "must be a time of day HH:MM") from None


def _weekdays(raw: Any, path: str) -> frozenset[int] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(d, int) and 1 <= d <= 7 for d in raw):
        raise bad(path, "must be a non-empty list of ISO weekdays 1 (Monday) to 7 (Sunday)")
    return frozenset(raw)


def parse_trigger(raw: Any, path: str, r: Resolver) -> Trigger:
    """One trigger."""
    t = _obj(raw, path)
    kind = t.get("type")
    if kind == "property":
        did = _str(t, "did", path, max_len=40)
        key = r.property(did, _str(t, "prop", path), f"{path}.prop", write=False)
        op = _op(t, path, required=False)
        if op is not None:
            r.check(did, key, t["value"], f"{path}.value")
        return PropertyTrigger(did, key, op, t.get("value") if op is not None else None)
    if kind == "event":
        did = _str(t, "did", path, max_len=40)
        return EventTrigger(did, r.event(did, _str(t, "event", path), f"{path}.event"))
    if kind == "online":
        online = t.get("online")
        if online is not None and not isinstance(online, bool):
            raise bad(f"{path}.online", "must be true, false or null (either)")
        return OnlineTrigger(_str(t, "did", path, max_len=40), online)
    if kind == "schedule":
        cron = _str(t, "cron", path, max_len=100)
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise bad(f"{path}.cron", f"{cron!r} is not a five-field cron expression")
        return ScheduleTrigger(cron)
    if kind == "time":
        at = _hhmm(t.get("at"), f"{path}.at")
        days = _weekdays(t.get("weekdays"), f"{path}.weekdays")
        dow = ",".join(str(d % 7) for d in sorted(days)) if days else "*"
        return ScheduleTrigger(f"{at.minute} {at.hour} * * {dow}")
    raise bad(f"{path}.type", "must be property, event, online, schedule or time")


def parse_condition(raw: Any, path: str, r: Resolver, depth: int = 0) -> Condition:
    """A condition tree: {all: [...]}, {any: [...]}, {not: {...}}, a property comparison or a time window."""
    c = _obj(raw, path)
    if depth > MAX_DEPTH:
        raise bad(path, f"conditions nest at most {MAX_DEPTH} levels deep")
    for group in ("all", "any"):
        if group in c:
            items = c[group]
            if not isinstance(items, list):
                raise bad(f"{path}.{group}", "must be a list of conditions")
            parsed = tuple(parse_condition(x, f"{path}.{group}[{i}]", r, depth + 1) for i, x in enumerate(items))
            return AllOf(parsed) if group == "all" else AnyOf(parsed)
    if "not" in c:
        return NotOf(parse_condition(c["not"], f"{path}.not", r, depth + 1))
    if "time" in c:
        w = _obj(c["time"], f"{path}.time")
        after = _hhmm(w["after"], f"{path}.time.after") if w.get("after") is not None else None
        before = _hhmm(w["before"], f"{path}.time.before") if w.get("before") is not None else None
        return TimeCondition(after, before, _weekdays(w.get("weekdays"), f"{path}.time.weekdays"))
    if "did" in c:
        did = _str(c, "did", path, max_len=40)
        key = r.property(did, _str(c, "prop", path), f"{path}.prop", write=False)
        op = _op(c, path, required=True)
        assert op is not None
        r.check(did, key, c["value"], f"{path}.value")
        return PropertyCondition(did, key, op, c["value"])
    raise bad(path, "must be {all: [...]}, {any: [...]}, {not: {...}}, {did, prop, op, value} or {time: {...}}")


def parse_action(raw: Any, path: str, r: Resolver) -> Action:
    """One action."""
    a = _obj(raw, path)
    kind = a.get("type")
    if kind == "set":
        did = _str(a, "did", path, max_len=40)
        values = _obj(a.get("values"), f"{path}.values")
        if not values:
            raise bad(f"{path}.values", "must name at least one property")
        out: dict[str, Any] = {}
        for ref, value in values.items():
            key = r.property(did, ref, f"{path}.values.{ref}", write=True)
            r.check(did, key, value, f"{path}.values.{ref}")
            out[key] = value
        return SetAction(did, out)
    if kind == "action":
        did = _str(a, "did", path, max_len=40)
        raw_in = a.get("in") or {}
        inputs: dict[int, Any] = {}
        items = raw_in.items() if isinstance(raw_in, dict) else [(x.get("piid"), x.get("value")) for x in raw_in
                                                                  if isinstance(x, dict)]
        for piid, value in items:
            try:
                inputs[int(piid)] = value  # type: ignore[arg-type]  # not an int: caught below
            except (TypeError, ValueError):
                raise bad(f"{path}.in", "must map input piids to values") from None
        return CallAction(did, r.action(did, _str(a, "action", path), inputs, f"{path}.action"), inputs)
    if kind == "run_rule":
        return RunRuleAction(_str(a, "rule_id", path, max_len=32), bool(a.get("skip_conditions", False)))
    if kind == "webhook":
        url = _str(a, "url", path, max_len=2000)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad(f"{path}.url", "must be an http:// or https:// URL")
        body = a.get("body")
        if body is not None:
            _obj(body, f"{path}.body")
        return WebhookAction(url, body)
    if kind == "notify":
        message = _str(a, "message", path, max_len=500)
        _template(message, f"{path}.message")
        title = _str(a, "title", path, max_len=100) if a.get("title") is not None else None
        if title is not None:
            _template(title, f"{path}.title")
        severity = a.get("severity", "info")
        if severity not in ("info", "warning", "critical"):
            raise bad(f"{path}.severity", "must be info, warning or critical")
        return NotifyAction(message, title, severity)
    raise bad(f"{path}.type", "must be set, action, run_rule, webhook or notify")


def _template(text: str, path: str) -> None:
    """Refuse a template naming fields the firing does not have (or with broken braces)."""
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as err:
        raise bad(path, f"is not a valid template ({err}); write {{{{ and }}}} for literal braces") from None
    if any(spec or conv for _, spec, conv in parts):  # plain fields only: no widths, no conversions
        raise bad(path, "fields take no format spec or conversion: write {device}, not {device:>9} or {device!r}")
    names = [f for f, _, _ in parts]
    unknown = [n for n in names if n not in NOTIFY_FIELDS]
    if unknown:
        raise bad(path, f"unknown field {{{unknown[0]}}} (known: {', '.join(sorted(NOTIFY_FIELDS))})")


def parse_rule(doc: dict[str, Any], r: Resolver) -> RuleSpec:
    """A whole rule document, resolved and checked against the specs of the devices it names."""
    name = _str(doc, "name", "rule", max_len=100)
    triggers, actions = doc.get("triggers"), doc.get("actions")
    if not isinstance(triggers, list) or not 1 <= len(triggers) <= MAX_TRIGGERS:
        raise bad("triggers", f"must be a list of 1 to {MAX_TRIGGERS} triggers")
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_ACTIONS:
        raise bad("actions", f"must be a list of 1 to {MAX_ACTIONS} actions")
    tz = doc.get("tz") or "UTC"
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise bad("tz", f"{tz!r} is not an IANA time zone") from None
    rate = doc.get("max_runs_per_minute", 10)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
        raise bad("max_runs_per_minute", f"must be an integer from 1 to {MAX_RATE}")
    conditions = None
    if doc.get("conditions") is not None:
        conditions = parse_condition(doc["conditions"], "conditions", r)
        leaves = _count_leaves(conditions)
        if leaves > MAX_LEAVES:
            raise bad("conditions", f"at most {MAX_LEAVES} conditions, got {leaves}")
    return RuleSpec(name=name,
                    triggers=tuple(parse_trigger(t, f"triggers[{i}]", r) for i, t in enumerate(triggers)),
                    actions=tuple(parse_action(a, f"actions[{i}]", r) for i, a in enumerate(actions)),
                    conditions=conditions, tz=str(tz), max_runs_per_minute=rate)


def _count_leaves(c: Condition) -> int:
    if isinstance(c, AllOf | AnyOf):
        return sum(_count_leaves(x) for x in c.items)
    if isinstance(c, NotOf):
        return _count_leaves(c.item)
    return 1


def condition_doc(c: Condition) -> dict[str, Any]:
    """A condition as stored (canonical keys)."""
    if isinstance(c, AllOf):
        return {"all": [condition_doc(x) for x in c.items]}
    if isinstance(c, AnyOf):
        return {"any": [condition_doc(x) for x in c.items]}
    if isinstance(c, NotOf):
        return {"not": condition_doc(c.item)}
    if isinstance(c, TimeCondition):
        w: dict[str, Any] = {"after": c.after.strftime("%H:%M") if c.after else None,
                             "before": c.before.strftime("%H:%M") if c.before else None}
        if c.weekdays:
            w["weekdays"] = sorted(c.weekdays)
        return {"time": w}
    return {"did": c.did, "prop": c.key, "op": c.op.value, "value": c.value}


def trigger_doc(t: Trigger) -> dict[str, Any]:
    """A trigger as stored (canonical keys; `time` triggers are stored as their cron)."""
    if isinstance(t, PropertyTrigger):
        out: dict[str, Any] = {"type": "property", "did": t.did, "prop": t.key}
        return {**out, "op": t.op.value, "value": t.value} if t.op is not None else out
    if isinstance(t, EventTrigger):
        return {"type": "event", "did": t.did, "event": t.key}
    if isinstance(t, OnlineTrigger):
        return {"type": "online", "did": t.did, "online": t.online}
    return {"type": "schedule", "cron": t.cron}


def action_doc(a: Action) -> dict[str, Any]:
    """An action as stored."""
    if isinstance(a, SetAction):
        return {"type": "set", "did": a.did, "values": dict(a.values)}
    if isinstance(a, CallAction):
        return {"type": "action", "did": a.did, "action": a.key, "in": {str(k): v for k, v in a.inputs.items()}}
    if isinstance(a, RunRuleAction):
        return {"type": "run_rule", "rule_id": a.rule_id, "skip_conditions": a.skip_conditions}
    if isinstance(a, NotifyAction):
        return {"type": "notify", "message": a.message, "title": a.title, "severity": a.severity}
    return {"type": "webhook", "url": a.url, "body": dict(a.body) if a.body is not None else None}


def rule_doc(spec: RuleSpec) -> dict[str, Any]:
    """The canonical document of a rule (what is stored and shown; parsing it again gives the same rule)."""
    return {"name": spec.name, "triggers": [trigger_doc(t) for t in spec.triggers],
            "conditions": condition_doc(spec.conditions) if spec.conditions is not None else None,
            "actions": [action_doc(a) for a in spec.actions], "tz": spec.tz,
            "max_runs_per_minute": spec.max_runs_per_minute}


class Stored:
    """The resolver of documents already resolved and checked at save time (keys are canonical)."""

    def property(self, did: str, ref: str, path: str, *, write: bool) -> str:
        """The stored key as is."""
        return ref

    def check(self, did: str, key: str, value: Any, path: str) -> None:
        """Checked at save time."""

    def event(self, did: str, ref: str, path: str) -> str:
        """The stored key as is."""
        return ref

    def action(self, did: str, ref: str, inputs: dict[int, Any], path: str) -> str:
        """The stored key as is."""
        return ref
