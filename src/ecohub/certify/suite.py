"""Protocol conformance checks generated from the spec: properties, writes, actions, events, limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ecohub.certify.context import Context, Outcome
from ecohub.certify.domain import DEFAULT_MAX_RATE_HZ, Status
from ecohub.certify.probe import Seen
from ecohub.errors import EcohubError
from ecohub.protocol import Channel, Method
from ecohub.spec.compiled import CompiledProperty, out_of_range_value, random_value

SHOW = 8  # how many offending items a reason names


def _key(siid: int, piid: int) -> str:
    return f"{siid}.{piid}"


def _reported(ctx: Context, since: float = 0.0) -> list[tuple[Seen, str, Any]]:
    """(message, key, value) for every property value unit A reported since `since`."""
    out = []
    for s in ctx.probe.messages(ctx.did, channel=Channel.UP, since=since):
        if s.method == Method.PROPERTIES_CHANGED and isinstance(s.body.get("params"), list):
            for item in s.body["params"]:
                if isinstance(item, dict) and "siid" in item and "piid" in item:
                    out.append((s, _key(item["siid"], item["piid"]), item.get("value")))
    return out


def _short(items: list[str]) -> str:
    return ", ".join(items[:SHOW]) + (f" and {len(items) - SHOW} more" if len(items) > SHOW else "")


async def properties_reported(ctx: Context) -> Outcome:
    """Wait until every readable/notify property was reported; every reported value must be valid."""
    expected = {cp.prop.key for cp in ctx.compiled.properties.values() if cp.readable or cp.notifies}
    if not expected:
        return Outcome(Status.NA, "the spec has no readable or notify property")
    await ctx.probe.until(lambda: expected <= {k for _, k, _ in _reported(ctx)}, within=ctx.timing.report_s)
    invalid, valid = [], set()
    for seen, key, value in _reported(ctx):
        siid, piid = (int(x) for x in key.split("."))
        problem = ctx.compiled.check_value(siid, piid, value)
        if problem is None:
            valid.add(key)
        else:
            invalid.append((seen, f"{key}={value!r:.40} ({problem.message})"))
    missing = sorted(expected - valid - {i.split("=")[0] for _, i in invalid})
    evidence = {"expected": len(expected), "valid_keys": len(valid & expected),
                "messages": [s.evidence(ctx.t0) for s, _ in invalid[:SHOW]]
                or [s.evidence(ctx.t0) for s in ctx.probe.messages(ctx.did, channel=Channel.UP)[:3]],
                "dead_letters": [{"code": d["code"], "reason": d["reason"]}
                                 for d in await ctx.api.dead_letters(ctx.did, limit=SHOW)]}
    if invalid:
        return Outcome(Status.FAIL, f"{len(invalid)} invalid value(s) reported: "
                       + _short([i for _, i in invalid]), evidence)
    if missing:
        return Outcome(Status.FAIL, f"never reported within {ctx.timing.report_s:.0f}s: {_short(missing)}", evidence)
    return Outcome(Status.PASS, f"all {len(expected)} readable/notify properties reported with valid values",
                   evidence)


async def _send(ctx: Context, method: str, params: Any) -> tuple[dict[str, Any] | None, str | None, float]:
    """Send through the hub's command API; (reply, problem, seconds)."""
    start = time.monotonic()
    try:
        reply = await ctx.api.command(ctx.did, method, params, timeout_s=ctx.timing.command_s)
    except EcohubError as err:
        return None, f"{err.code}: {err.message}", time.monotonic() - start
    return reply, None, time.monotonic() - start


async def properties_get(ctx: Context) -> Outcome:
    """get_properties of every readable property answers code 0 with a valid value."""
    readable = [cp for cp in ctx.compiled.properties.values() if cp.readable]
    if not readable:
        return Outcome(Status.NA, "the spec has no readable property")
    start = time.monotonic()
    reply, problem, took = await _send(ctx, Method.GET_PROPERTIES,
                                       [{"siid": cp.prop.siid, "piid": cp.prop.iid} for cp in readable])
    ctx.mark_busy(start)
    evidence: dict[str, Any] = {"requested": len(readable), "reply_ms": round(took * 1000), "reply": reply}
    if reply is None:
        return Outcome(Status.FAIL, f"no answer to get_properties: {problem}", evidence)
    if "error" in reply:
        return Outcome(Status.FAIL, f"get_properties refused: {reply['error']}", evidence)
    items = {(i.get("siid"), i.get("piid")): i for i in reply.get("result") or [] if isinstance(i, dict)}
    bad = []
    for cp in readable:
        item = items.get((cp.prop.siid, cp.prop.iid))
        if item is None:
            bad.append(f"{cp.prop.key} missing from the reply")
        elif item.get("code") != 0:
            bad.append(f"{cp.prop.key} code {item.get('code')}")
        elif (p := cp.check(item.get("value"))) is not None:
            bad.append(f"{cp.prop.key}={item.get('value')!r:.40} ({p.message})")
    if bad:
        return Outcome(Status.FAIL, f"{len(bad)} bad item(s): {_short(bad)}", evidence)
    return Outcome(Status.PASS, f"{len(readable)} properties read in {took * 1000:.0f} ms", evidence)


def _other_value(ctx: Context, cp: CompiledProperty, current: Any) -> Any:
    for _ in range(20):
        value = random_value(cp.prop, ctx.rnd)
        if value != current:
            return value
    return value


async def properties_set_roundtrip(ctx: Context) -> Outcome:
    """Every writable property: set (via the hub's commands) → code 0 → properties_changed → twin."""
    writable = [cp for cp in ctx.compiled.properties.values() if cp.writable]
    if not writable:
        return Outcome(Status.NA, "the spec has no writable property")
    last = {k: v for _, k, v in _reported(ctx)}
    targets = {cp.prop.key: (cp, _other_value(ctx, cp, last.get(cp.prop.key))) for cp in writable}
    start = time.monotonic()
    sent = await asyncio.gather(*[
        _send(ctx, Method.SET_PROPERTIES, [{"siid": cp.prop.siid, "piid": cp.prop.iid, "value": v}])
        for cp, v in targets.values()])
    problems: list[str] = []
    timings: dict[str, Any] = {}
    for (key, (_cp, value)), (reply, problem, took) in zip(targets.items(), sent, strict=True):
        timings[key] = {"value": value, "reply_ms": round(took * 1000)}
        if reply is None:
            problems.append(f"{key}: {problem}")
        elif "error" in reply:
            problems.append(f"{key}: error {reply['error']}")
        elif not reply.get("result") or reply["result"][0].get("code") != 0:
            problems.append(f"{key}: reply {reply.get('result')}")
    notify = [(k, cp, v) for k, (cp, v) in targets.items() if cp.notifies and k not in {p.split(":")[0]
                                                                                      for p in problems}]
    pending = {k: v for k, _, v in notify}

    def confirmed() -> bool:
        for seen, key, value in _reported(ctx, since=start):
            if key in pending and value == pending[key]:
                timings[key]["changed_ms"] = round((seen.at - start) * 1000)
                del pending[key]
        return not pending

    await ctx.probe.until(confirmed, within=ctx.timing.settle_s)
    problems += [f"{k}: no properties_changed with {v!r:.30} within {ctx.timing.settle_s:.1f}s"
                 for k, v in pending.items()]
    twin_bad = await _twin_follows(ctx, [(k, v) for k, _, v in notify if k not in pending], start)
    problems += twin_bad
    ctx.mark_busy(start)
    evidence = {"properties": timings}
    if problems:
        return Outcome(Status.FAIL, f"{len(problems)} of {len(targets)} writable properties did not round-trip: "
                       + _short(problems), evidence)
    return Outcome(Status.PASS, f"{len(targets)} writable properties round-tripped "
                   f"({len(notify)} confirmed by properties_changed and the twin)", evidence)


async def _twin_follows(ctx: Context, expected: list[tuple[str, Any]], since: float) -> list[str]:
    """The twin shows the set value, or a value the device reported after it (the device moved on)."""
    deadline = time.monotonic() + ctx.timing.settle_s
    while True:
        props = (await ctx.api.twin(ctx.did))["properties"]
        later: dict[str, list[Any]] = {}
        for _, key, value in _reported(ctx, since=since):
            later.setdefault(key, []).append(value)
        bad = [f"{k}: twin shows {props.get(k, {}).get('value')!r:.30}, expected {v!r:.30}" for k, v in expected
               if props.get(k, {}).get("value") not in (v, *later.get(k, [])[-1:])]
        if not bad or time.monotonic() > deadline:
            return bad
        await asyncio.sleep(0.1)


def _wrong_type_value(cp: CompiledProperty) -> Any:
    return 12345 if cp.prop.format == "string" else "not-a-number" if cp.prop.format != "bool" else "yes"


async def _refusals(ctx: Context, cases: list[tuple[str, Any]], what: str) -> Outcome:
    """Send each (key, value) raw on the down topic; every one must come back with an error code."""
    if not cases:
        return Outcome(Status.NA, f"the spec has no property to test {what} on")
    start = time.monotonic()
    replies = await asyncio.gather(*[
        ctx.probe.request(ctx.did, Method.SET_PROPERTIES,
                          [{"siid": int(k.split(".")[0]), "piid": int(k.split(".")[1]), "value": v}],
                          within=ctx.timing.command_s) for k, v in cases])
    ctx.mark_busy(start)
    accepted, silent, codes = [], [], {}
    for (key, value), (reply, took) in zip(cases, replies, strict=True):
        if reply is None:
            silent.append(key)
            continue
        body = reply.body
        code = (body.get("error") or {}).get("code") if body.get("error") else \
            next((i.get("code") for i in body.get("result") or [] if isinstance(i, dict)), None)
        codes[key] = {"value": value, "code": code, "reply_ms": round(took * 1000)}
        if not isinstance(code, int) or code == 0:
            accepted.append(f"{key}={value!r:.30} (code {code})")
    evidence = {"sent_raw_on_down": True, "cases": codes}
    if accepted or silent:
        parts = [f"accepted {_short(accepted)}"] if accepted else []
        parts += [f"no reply within {ctx.timing.command_s:.1f}s for {_short(silent)}"] if silent else []
        return Outcome(Status.FAIL, f"{what}: " + "; ".join(parts), evidence)
    return Outcome(Status.PASS, f"{len(cases)} {what} refused with error codes "
                   f"{sorted({c['code'] for c in codes.values()})}", evidence)


async def writes_refused_out_of_range(ctx: Context) -> Outcome:
    """Out-of-range values on writable properties are refused by the device."""
    cases = [(cp.prop.key, v) for cp in ctx.compiled.properties.values()
             if cp.writable and (v := out_of_range_value(cp.prop)) is not None]
    return await _refusals(ctx, cases, "out-of-range writes")


async def writes_refused_wrong_type(ctx: Context) -> Outcome:
    """Wrongly typed values on writable properties are refused by the device."""
    cases = [(cp.prop.key, _wrong_type_value(cp)) for cp in ctx.compiled.properties.values() if cp.writable]
    return await _refusals(ctx, cases, "wrong-type writes")


async def writes_refused_not_writable(ctx: Context) -> Outcome:
    """Valid values on read-only properties are refused by the device."""
    cases = [(cp.prop.key, random_value(cp.prop, ctx.rnd)) for cp in ctx.compiled.properties.values()
             if not cp.writable]
    return await _refusals(ctx, cases, "writes to read-only properties")


async def actions_answer(ctx: Context) -> Outcome:
    """Every action answers code 0 with exactly its declared out arguments, valid values."""
    actions = list(ctx.compiled.actions.values())
    if not actions:
        return Outcome(Status.NA, "the spec has no action")
    start = time.monotonic()
    sent = await asyncio.gather(*[_send(ctx, Method.ACTION, {
        "siid": a.siid, "aiid": a.iid,
        "in": [{"piid": p, "value": ctx.compiled.random_value(a.siid, p, ctx.rnd)} for p in a.in_]})
        for a in actions])
    ctx.mark_busy(start)
    problems, evidence = [], {}
    for a, (reply, problem, took) in zip(actions, sent, strict=True):
        key = f"{a.siid}.{a.iid} ({a.name})"
        evidence[key] = {"reply_ms": round(took * 1000), "reply": reply.get("result") if reply else problem}
        if reply is None or "error" in reply:
            problems.append(f"{key}: {problem if reply is None else reply.get('error')}")
            continue
        result = reply.get("result")
        result = result if isinstance(result, dict) else {}
        out = _args(result.get("out"))
        if result.get("code", 0) != 0:
            problems.append(f"{key}: code {result.get('code')}")
        elif set(out) != set(a.out):
            problems.append(f"{key}: out arguments {sorted(map(str, out))} but the spec declares {sorted(a.out)}")
        else:
            bad = [f"piid {p}" for p, v in out.items() if ctx.compiled.check_value(a.siid, p, v) is not None]
            if bad:
                problems.append(f"{key}: invalid out values {', '.join(bad)}")
    if problems:
        return Outcome(Status.FAIL, f"{len(problems)} of {len(actions)} actions failed: {_short(problems)}",
                       {"actions": evidence})
    return Outcome(Status.PASS, f"{len(actions)} actions answered with their declared out arguments",
                   {"actions": evidence})


async def events_arguments(ctx: Context) -> Outcome:
    """Every declared event is seen; every event carries exactly its declared, valid arguments."""
    declared = ctx.compiled.events
    if not declared:
        return Outcome(Status.NA, "the spec has no event")

    def seen() -> list[Seen]:
        return [s for s in ctx.probe.messages(ctx.did, channel=Channel.UP) if s.method == Method.EVENT_OCCURED]

    await ctx.probe.until(lambda: set(declared) <= {_ev(s) for s in seen()}, within=ctx.timing.report_s)
    problems: list[str] = []
    got: set[tuple[int, int]] = set()
    for s in seen():
        key = _ev(s)
        ev = declared.get(key) if key is not None else None
        if key is None or ev is None:
            problems.append(f"undeclared event {key}")
            continue
        got.add(key)
        args = _args(s.body["params"].get("arguments"))
        if set(args) != set(ev.arguments):
            problems.append(f"{key[0]}.{key[1]} ({ev.name}): arguments {sorted(map(str, args))}, declared "
                            f"{sorted(ev.arguments)}")
        elif bad := [p for p, v in args.items() if ctx.compiled.check_value(key[0], p, v) is not None]:
            problems.append(f"{key[0]}.{key[1]}: invalid values for piid {bad}")
    missing = sorted(f"{k[0]}.{k[1]}" for k in set(declared) - got)
    evidence = {"declared": len(declared), "seen": [s.evidence(ctx.t0) for s in seen()[:SHOW]]}
    if problems:
        return Outcome(Status.FAIL, _short(sorted(set(problems))), evidence)
    if missing:
        return Outcome(Status.SKIP, f"not observed during the run: {_short(missing)} (the device must emit each "
                       "declared event at least once while the suite runs, e.g. in a test mode)", evidence)
    return Outcome(Status.PASS, f"all {len(declared)} declared events seen with their declared arguments",
                   evidence)


def _args(items: Any) -> dict[Any, Any]:
    """{piid: value} of a list of {piid, value}; anything else in it is ignored."""
    return {a.get("piid"): a.get("value") for a in items if isinstance(a, dict)} if isinstance(items, list) else {}


def _ev(s: Seen) -> tuple[int, int] | None:
    p = s.body.get("params") if isinstance(s.body, dict) else None
    if not isinstance(p, dict) or not isinstance(p.get("siid"), int) or not isinstance(p.get("eiid"), int):
        return None
    return p["siid"], p["eiid"]


async def limits_message_rate(ctx: Context) -> Outcome:
    """Unsolicited messages per second (outside the suite's own request bursts) stay within the limit."""
    limit = ctx.declaration.limit("max_messages_per_s", DEFAULT_MAX_RATE_HZ)
    grace = 1.0
    worst, worst_at = 0, 0.0
    for unit in ctx.units:
        times = [s.at for s in ctx.probe.messages(unit["did"], channel=Channel.UP)
                 if not s.is_reply and not any(a - 0.05 <= s.at <= b + grace for a, b in ctx.busy)]
        j = 0
        for i, t in enumerate(times):
            while times[j] < t - 1.0:
                j += 1
            if i - j + 1 > worst:
                worst, worst_at = i - j + 1, t
    evidence = {"limit_per_s": limit, "max_in_1s": worst, "at_ms": ctx.ms(worst_at) if worst else None,
                "excluded_windows_ms": [[ctx.ms(a), ctx.ms(b)] for a, b in ctx.busy]}
    if worst > limit:
        return Outcome(Status.FAIL, f"{worst} messages within one second exceed the limit of {limit:g}/s", evidence)
    return Outcome(Status.PASS, f"at most {worst} messages in any second (limit {limit:g}/s)", evidence)


async def limits_payload_size(ctx: Context) -> Outcome:
    """No payload exceeds the declared maximum nor the hub's; nothing was dead-lettered as oversized."""
    hub_max = ctx.hub_max_payload
    limit = int(min(ctx.declaration.limit("max_payload_bytes", hub_max), hub_max))
    sizes = [s.size for u in ctx.units for s in ctx.probe.messages(u["did"]) if s.channel != Channel.DOWN]
    oversized = [d for u in ctx.units for d in await ctx.api.dead_letters(u["did"], limit=50)
                 if d["code"] == "oversized"]
    biggest = max(sizes, default=0)
    evidence = {"limit_bytes": limit, "largest_bytes": biggest, "messages": len(sizes),
                "oversized_dead_letters": len(oversized)}
    if biggest > limit or oversized:
        return Outcome(Status.FAIL, f"largest payload {biggest} bytes exceeds {limit}", evidence)
    return Outcome(Status.PASS, f"largest of {len(sizes)} payloads: {biggest} bytes (limit {limit})", evidence)
