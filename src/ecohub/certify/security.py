"""Connection, state and security checks: auth, retained state, will, reconnect, isolation, declarations."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gmqtt.mqtt.constants import MQTTv311

from ecohub.certify.context import Context, Outcome
from ecohub.certify.domain import (
    Status,
    check_privacy,
    check_secure_update,
    check_support_period,
    check_vulnerability_contact,
)
from ecohub.certify.probe import OneShotClient, impersonate, retained_state
from ecohub.protocol import Channel, Method


async def connect_auth(ctx: Context) -> Outcome:
    """Unit A connects with its own did/secret and announces itself online."""
    seen = await _online_while_running(ctx, ctx.did)
    evidence: dict[str, Any] = {"unit": ctx.did, "device": ctx.device.describe(),
                                "refused_connects": await ctx.refusals(ctx.did, actions=("connect",))}
    if seen is None:
        evidence["device_output"] = ctx.device.tail()
        why = "the device process exited" if not ctx.device.running else "no online state"
        return Outcome(Status.FAIL, f"{why}: unit {ctx.did} did not come online within {ctx.timing.online_s:.0f}s",
                       evidence)
    ctx.online = True
    evidence["online_after_ms"] = ctx.ms(seen.at)
    evidence["state"] = seen.evidence(ctx.t0)
    return Outcome(Status.PASS, f"online {ctx.ms(seen.at)} ms after the device process started", evidence)


async def _online_unless(ctx: Context, did: str, since: float, give_up: Callable[[], Awaitable[bool]], *,
                         grace_s: float = 0.0) -> Any:
    """The unit's online state, or None once the timeout passed or `give_up()` said so (then wait `grace_s` more)."""
    online = asyncio.create_task(ctx.probe.wait_online(did, True, within=ctx.timing.online_s, since=since))
    try:
        while not online.done() and not await give_up():
            await asyncio.wait({online}, timeout=0.2)
        if not online.done() and grace_s:
            await asyncio.wait({online}, timeout=grace_s)
        return online.result() if online.done() else None
    finally:
        online.cancel()


async def _online_while_running(ctx: Context, did: str, since: float | None = None) -> Any:
    """The unit's online state, or None once the timeout passed or the device process exited."""

    async def exited() -> bool:
        return not ctx.device.running

    # after an exit, a last message may still be on its way
    return await _online_unless(ctx, did, ctx.t0 if since is None else since, exited, grace_s=0.5)


async def connect_retained_state(ctx: Context) -> Outcome:
    """A fresh subscriber to the state topic gets {"online": true} retained."""
    seen = await retained_state(ctx.endpoint, ctx.did, client_id=f"certify-ret-{ctx.did}",
                                within=ctx.timing.command_s)
    if seen is None:
        return Outcome(Status.FAIL, "no retained message on the state topic")
    evidence = {"message": seen.evidence(ctx.t0)}
    # the firmware version may ride along (ota.firmware_version checks it); nothing else belongs there
    body = seen.body if isinstance(seen.body, dict) else {}
    if not seen.retained or body.get("online") is not True or set(body) - {"online", "firmware_version"}:
        return Outcome(Status.FAIL, f"state topic holds {seen.body!r} (retained={seen.retained}), expected "
                       '{"online": true} retained', evidence)
    return Outcome(Status.PASS, 'the state topic holds {"online": true} retained', evidence)


async def _refused_with(ctx: Context, did: str, secret: str) -> bool:
    """True when the broker refuses did with this secret."""
    client = OneShotClient(did, clean_session=True)
    client.set_auth_credentials(did, secret)
    try:
        await asyncio.wait_for(client.connect(ctx.endpoint.host, ctx.endpoint.port, version=MQTTv311),
                               timeout=ctx.timing.command_s)
    except Exception:
        return True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), timeout=2)
    return False


async def unique_credentials(ctx: Context) -> Outcome:
    """Two units: distinct did and secret, each connects with its own, one's secret does not open the other."""
    a, b = ctx.units[0], ctx.units[1]
    distinct = a["did"] != b["did"] and a["secret"] != b["secret"]
    seen_b = await _unit_online_or_refused(ctx, b["did"])
    evidence: dict[str, Any] = {"units": [a["did"], b["did"]], "distinct_secrets": distinct,
                                "unit_b_online": seen_b is not None,
                                "unit_b_refused_connects": await ctx.refusals(b["did"], actions=("connect",))}
    if not distinct:
        return Outcome(Status.FAIL, "the two provisioned units share a credential", evidence)
    if seen_b is None:
        refused = evidence["unit_b_refused_connects"]
        why = (f"the broker refused its CONNECT ({refused[-1]['reason']}): the firmware presents a secret that is "
               "not this unit's own (a shared or default password?)") if refused else "it never sent an online state"
        return Outcome(Status.FAIL, f"unit B ({b['did']}) did not connect with its own credentials: {why}", evidence)
    cross = await _refused_with(ctx, b["did"], a["secret"])
    evidence["unit_a_secret_opens_unit_b"] = not cross
    if not cross:
        return Outcome(Status.FAIL, "unit A's secret authenticates unit B", evidence)
    return Outcome(Status.PASS, "both units connected with their own credentials; A's secret does not open B",
                   evidence)


async def _unit_online_or_refused(ctx: Context, did: str) -> Any:
    """Wait for the unit's online state; give up early once the broker refused its CONNECT and a while passed."""

    async def refused_a_while_ago() -> bool:
        refused = await ctx.refusals(did, actions=("connect",))
        return bool(refused) and time.monotonic() - (ctx.t0 + refused[0]["t_ms"] / 1000) > ctx.timing.settle_s

    return await _online_unless(ctx, did, ctx.t0, refused_a_while_ago)


async def broker_isolation(ctx: Context) -> Outcome:
    """Connected as unit A, try unit B's down (subscribe) and up (publish): the broker must refuse both.

    Connecting with A's client id takes A's session over, which drops the device's connection: the next check
    (connect.reconnect) requires the device to come back.
    """
    a, b = ctx.units[0], ctx.units[1]
    result = await impersonate(ctx.endpoint, a["did"], a["secret"], b["did"], hold_s=ctx.timing.hold_s)
    ctx.notes["impersonation"] = result
    if not result.get("connected"):
        return Outcome(Status.SKIP, f"could not connect as unit A to probe the ACL: {result.get('error')}", result)
    ctx.own_acl_windows.append((result["at"], result["until"] + 0.5))
    await asyncio.sleep(0.2)
    leaked = [s.evidence(ctx.t0) for s in ctx.probe.messages(b["did"], channel=Channel.UP, since=result["at"])
              if s.body == {"id": 1, "method": "properties_changed", "params": []}]
    if not result["suback"]:
        return Outcome(Status.SKIP, "the broker did not answer unit A's SUBSCRIBE on B's down in time; the ACL "
                       "could not be probed", {"subscribe_other_down_suback": []})
    sub_ok = all(q >= 0x80 for q in result["suback"])
    evidence = {"subscribe_other_down_suback": result["suback"], "publish_other_up_delivered": leaked,
                "broker_refusals": [r for r in await ctx.refusals(a["did"], actions=("publish", "subscribe"))
                                    if result["at"] <= ctx.t0 + r["t_ms"] / 1000 <= result["until"] + 0.5]}
    problems = ([] if sub_ok else [f"subscribing on B's down was granted (SUBACK {result['suback']})"]) + \
        (["publishing on B's up was delivered"] if leaked else [])
    if problems:
        return Outcome(Status.FAIL, "; ".join(problems), evidence)
    return Outcome(Status.PASS, "the broker refused A subscribing on B's down (SUBACK 0x80) and publishing on "
                   "B's up", evidence)


async def connect_reconnect(ctx: Context) -> Outcome:
    """The unit reconnects, resubscribes and answers after its connection was dropped by a session take-over.

    The take-over (security.broker_isolation connected with the unit's own client id) is what a device sees when the
    broker restarts or its link drops, and it needs nothing but MQTT: the suite runs it against any hub.
    """
    taken = ctx.notes.get("impersonation") or {}
    if not taken.get("connected"):
        return Outcome(Status.SKIP, "the connection could not be dropped (see security.broker_isolation)")
    dropped_at = taken["at"]
    # from the take-over on: a unit that reconnects quickly takes its session back while the suite still holds it
    seen = await ctx.probe.wait_online(ctx.did, True, within=ctx.timing.reconnect_s, since=dropped_at)
    evidence: dict[str, Any] = {
        "method": "session_takeover",
        "how": "the unit's connection was dropped by an MQTT session take-over with its own client id and "
               "credentials (what a device sees when the broker restarts or its link drops)",
        "dropped_at_ms": ctx.ms(dropped_at)}
    if seen is None:
        return Outcome(Status.FAIL, f"no online state within {ctx.timing.reconnect_s:.0f}s after the connection "
                       "was dropped (session take-over)", evidence)
    evidence["back_after_ms"] = round((seen.at - dropped_at) * 1000)
    evidence["state"] = seen.evidence(ctx.t0)
    if not await _answers(ctx, evidence):
        return Outcome(Status.FAIL, "reconnected but did not answer a request (not resubscribed to down?)", evidence)
    evidence["hub"] = await _hub_recovered(ctx)
    return Outcome(Status.PASS, f"back online {evidence['back_after_ms']} ms after the connection was dropped "
                   "(session take-over), and answering", evidence)


async def _answers(ctx: Context, evidence: dict[str, Any]) -> bool:
    """A raw get_properties on the unit's down topic is answered (it subscribed again); no readable property: True."""
    readable = next((cp for cp in ctx.compiled.properties.values() if cp.readable), None)
    if readable is None:
        return True
    start = time.monotonic()
    reply, took = await ctx.probe.request(ctx.did, Method.GET_PROPERTIES,
                                          [{"siid": readable.prop.siid, "piid": readable.prop.iid}],
                                          within=ctx.timing.command_s)
    ctx.mark_busy(start)
    if reply is None:
        return False
    evidence["answer_ms"] = round(took * 1000)
    return True


async def _hub_recovered(ctx: Context) -> dict[str, Any]:
    """Evidence that the hub reaches the unit again: a command through its API is answered, the twin says online."""
    readable = next((cp for cp in ctx.compiled.properties.values() if cp.readable), None)
    if readable is None:
        return {"command": "no readable property to ask"}
    deadline = time.monotonic() + ctx.timing.reconnect_s
    attempts, problem = 0, None
    while time.monotonic() < deadline:
        attempts += 1
        start = time.monotonic()
        try:
            await ctx.api.command(ctx.did, Method.GET_PROPERTIES,
                                  [{"siid": readable.prop.siid, "piid": readable.prop.iid}],
                                  timeout_s=ctx.timing.command_s)
        except Exception as err:  # the hub may not have seen the unit come back yet
            problem = f"{type(err).__name__}: {err}"
            await asyncio.sleep(0.2)
            continue
        finally:
            ctx.mark_busy(start)
        return {"command_answered": True, "attempts": attempts,
                "twin_online": await _twin_online(ctx, True)}
    return {"command_answered": False, "attempts": attempts, "last_problem": problem}


async def offline_will(ctx: Context) -> Outcome:
    """SIGKILL the device process: the broker publishes the will; the retained state and the twin say offline."""
    # what the unit last announced on its state topic: an MQTT client cannot ask the broker who is connected
    states = [m for m in ctx.probe.messages(ctx.did, channel=Channel.STATE) if isinstance(m.body, dict)]
    was_connected = states[-1].body.get("online") if states else None
    killed_at = time.monotonic()
    code = await ctx.device.kill()
    seen = await ctx.probe.wait_online(ctx.did, False, within=ctx.timing.will_s, since=killed_at)
    evidence: dict[str, Any] = {"exit_code": code, "killed_at_ms": ctx.ms(killed_at),
                                "connected_when_killed": was_connected}
    if seen is None and was_connected is False:
        return Outcome(Status.FAIL, "the unit was not connected to the broker when its process was killed (it did "
                       "not come back after connect.reconnect), so no will could go out", evidence)
    if seen is None:
        return Outcome(Status.FAIL, f"no offline state within {ctx.timing.will_s:.0f}s of killing the process "
                       "(is the MQTT will set on the state topic?)", evidence)
    evidence["will_after_ms"] = round((seen.at - killed_at) * 1000)
    retained = await retained_state(ctx.endpoint, ctx.did, client_id=f"certify-ret2-{ctx.did}",
                                    within=ctx.timing.command_s)
    evidence["retained"] = retained.evidence(ctx.t0) if retained else None
    if retained is None or retained.body != {"online": False}:
        return Outcome(Status.FAIL, "the will was not retained: the state topic does not say offline", evidence)
    twin_offline = await _twin_online(ctx, False)
    evidence["twin_offline"] = twin_offline
    if not twin_offline:
        return Outcome(Status.FAIL, "the twin still says online", evidence)
    return Outcome(Status.PASS, f"offline via the will {evidence['will_after_ms']} ms after SIGKILL", evidence)


async def _twin_online(ctx: Context, online: bool) -> bool:
    deadline = time.monotonic() + ctx.timing.settle_s
    while time.monotonic() < deadline:
        if (await ctx.api.twin(ctx.did))["online"] is online:
            return True
        await asyncio.sleep(0.1)
    return False


async def back_online(ctx: Context) -> Outcome:
    """Start the process again: online, and reporting, within the start-up time."""
    started = time.monotonic()
    await ctx.device.start()
    seen = await _online_while_running(ctx, ctx.did, since=started)
    evidence: dict[str, Any] = {"device": ctx.device.describe()}
    if seen is None:
        evidence["device_output"] = ctx.device.tail()
        return Outcome(Status.FAIL, f"not online within {ctx.timing.online_s:.0f}s of restarting", evidence)
    evidence["online_after_ms"] = round((seen.at - started) * 1000)
    # since the restart, not since the online state was seen: a broker may hand the probe's `up` and `state`
    # subscriptions their messages in either order (NATS serves each QoS 1 subscription by its own consumer)
    report = await ctx.probe.wait_for(lambda s: s.did == ctx.did and s.method == Method.PROPERTIES_CHANGED,
                                      within=ctx.timing.report_s, since=started)
    if report is None and any(cp.readable or cp.notifies for cp in ctx.compiled.properties.values()):
        return Outcome(Status.FAIL, "online again but reported no properties", evidence)
    if not await _twin_online(ctx, True):
        return Outcome(Status.FAIL, "the twin did not come back online", evidence)
    return Outcome(Status.PASS, f"online again {evidence['online_after_ms']} ms after restart", evidence)


async def no_foreign_attempts(ctx: Context) -> Outcome:
    """The broker's refusal log holds no attempt by the units on topics that are not theirs."""
    if not ctx.refusals_readable:
        return Outcome(Status.SKIP, "the hub does not hand out its broker's refusal log (GET /api/v1/devices/{did}/"
                       "refusals: only a hub with the embedded broker records refusals)")
    attempts = [r for u in ctx.units for r in await ctx.refusals(u["did"], actions=("publish", "subscribe"))
                if not any(a <= ctx.t0 + r["t_ms"] / 1000 <= b for a, b in ctx.own_acl_windows)]
    evidence = {"attempts": attempts[:10], "excluded": "the suite's own impersonation window"}
    if attempts:
        topics = sorted({f"{r['action']} {r['topic']}" for r in attempts})
        return Outcome(Status.FAIL, f"the device tried {len(attempts)} time(s) outside its topics: "
                       + ", ".join(topics[:5]), evidence)
    return Outcome(Status.PASS, "no publish or subscribe outside the unit's own topics", evidence)


def _declared(ok_reason: tuple[bool, str]) -> Outcome:
    ok, reason = ok_reason
    return Outcome(Status.PASS if ok else Status.FAIL, reason)


async def declaration_vulnerability_contact(ctx: Context) -> Outcome:
    """Vulnerability disclosure contact."""
    return _declared(check_vulnerability_contact(ctx.declaration))


async def declaration_support_period(ctx: Context) -> Outcome:
    """Declared support period."""
    return _declared(check_support_period(ctx.declaration))


async def declaration_secure_update(ctx: Context) -> Outcome:
    """Declared secure update mechanism."""
    return _declared(check_secure_update(ctx.declaration))


async def declaration_privacy(ctx: Context) -> Outcome:
    """Privacy declaration consistent with the spec."""
    return _declared(check_privacy(ctx.declaration, ctx.compiled))
