"""Commands to devices: validate against the spec, publish on `down`, wait for the reply on `up`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy import bindparam, insert, update

from ecohub.bus import EventBus
from ecohub.connect.events import OnlineChanged
from ecohub.connect.models import Command
from ecohub.connect.service import DeviceInfo, DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import ErrorCode, InvalidInput, NotFound, Timeout, Unavailable
from ecohub.protocol import Code, Method, Topic, subject_of
from ecohub.protocol.messages import DownMessage, decode_raw, decode_up, encode
from ecohub.spec import CompiledSpec
from ecohub.store import Databases, now_ms
from ecohub.twin.service import TwinService

log = logging.getLogger(__name__)
ONLINE_GATHER_S = 0.02  # devices coming online within this are looked up together
STALE_CLAIM_S = 60.0  # a claim older than this (plus the command timeout) belonged to a process that died


class _ParamsError(InvalidInput):
    code = ErrorCode.INVALID_COMMAND


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _ParamsError(f"{where} must be an integer")
    return value


def _items(params: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(params, list) or not params:
        raise _ParamsError(f"params of {what} must be a non-empty list of {{siid, piid, ...}}")
    if len(params) > 64:
        raise _ParamsError(f"at most 64 items per {what}")
    for i, item in enumerate(params):
        if not isinstance(item, dict):
            raise _ParamsError(f"params[{i}] must be an object")
    return params


def validate_command(spec: CompiledSpec, method: str, params: Any) -> Any:
    """Check a command against the spec before anything is sent; returns the params to put on the wire."""
    if method == Method.SET_PROPERTIES:
        out = []
        for i, item in enumerate(_items(params, method)):
            siid, piid = _int(item.get("siid"), f"params[{i}].siid"), _int(item.get("piid"), f"params[{i}].piid")
            cp = spec.properties.get((siid, piid))
            if cp is None:
                raise NotFound(f"params[{i}]: property {siid}.{piid} is not in the spec",
                               code=ErrorCode.UNKNOWN_PROPERTY)
            if not cp.writable:
                raise InvalidInput(f"params[{i}]: property {siid}.{piid} ({cp.prop.name}) is not writable",
                                   code=ErrorCode.PROPERTY_NOT_WRITABLE, device_code=int(Code.PROPERTY_NOT_WRITABLE))
            if "value" not in item:
                raise _ParamsError(f"params[{i}].value is missing")
            problem = cp.check(item["value"])
            if problem is not None:
                raise InvalidInput(f"params[{i}] ({siid}.{piid}): {problem.message}", code=ErrorCode(problem.kind))
            out.append({"siid": siid, "piid": piid, "value": item["value"]})
        return out
    if method == Method.GET_PROPERTIES:
        out = []
        for i, item in enumerate(_items(params, method)):
            siid, piid = _int(item.get("siid"), f"params[{i}].siid"), _int(item.get("piid"), f"params[{i}].piid")
            cp = spec.properties.get((siid, piid))
            if cp is None:
                raise NotFound(f"params[{i}]: property {siid}.{piid} is not in the spec",
                               code=ErrorCode.UNKNOWN_PROPERTY)
            if not cp.readable:
                raise InvalidInput(f"params[{i}]: property {siid}.{piid} is not readable",
                                   code=ErrorCode.PROPERTY_NOT_READABLE)
            out.append({"siid": siid, "piid": piid})
        return out
    if method == Method.ACTION:
        if not isinstance(params, dict):
            raise _ParamsError("params of action must be {siid, aiid, in: [{piid, value}]}")
        siid, aiid = _int(params.get("siid"), "params.siid"), _int(params.get("aiid"), "params.aiid")
        action = spec.actions.get((siid, aiid))
        if action is None:
            raise NotFound(f"action {siid}.{aiid} is not in the spec", code=ErrorCode.UNKNOWN_ACTION)
        args = params.get("in", [])
        if not isinstance(args, list):
            raise _ParamsError("params.in must be a list of {piid, value}")
        given = {}
        for i, arg in enumerate(args):
            if not isinstance(arg, dict) or "value" not in arg:
                raise _ParamsError(f"params.in[{i}] must be {{piid, value}}")
            piid = _int(arg.get("piid"), f"params.in[{i}].piid")
            if piid not in action.in_:
                raise InvalidInput(f"params.in[{i}]: piid {piid} is not an input of action {siid}.{aiid}",
                                   code=ErrorCode.INVALID_ARGUMENT)
            problem = spec.check_value(siid, piid, arg["value"])
            if problem is not None:
                raise InvalidInput(f"params.in[{i}] (piid {piid}): {problem.message}", code=ErrorCode(problem.kind))
            given[piid] = arg["value"]
        missing = [p for p in action.in_ if p not in given]
        if missing:
            raise InvalidInput(f"action {siid}.{aiid} needs inputs for piid {missing}", code=ErrorCode.MISSING_ARGUMENT)
        return {"siid": siid, "aiid": aiid, "in": [{"piid": p, "value": v} for p, v in given.items()]}
    raise _ParamsError(f"method must be one of set_properties, get_properties, action; got {method!r}")


class CommandLink:
    """This process's command sender once it has a broker connection (a CLI process on the data dir has none)."""

    def __init__(self) -> None:
        self.service: CommandService | None = None

    def require(self) -> CommandService:
        """The sender, or 503 `commands_unavailable` when this process has no broker connection."""
        if self.service is None:
            raise Unavailable("this process has no broker connection for commands", code=ErrorCode.COMMANDS_UNAVAILABLE)
        return self.service


@dataclass(slots=True)
class _Watch:
    """One device's reply subscription, shared by the commands open to it."""

    count: int = 1
    sub: Subscription | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class CommandService:
    """Sends validated commands over NATS and waits for the device's reply on its `up` subject.

    A command goes to a connected device (MQTT QoS 0 from a NATS publisher); one that does not answer is a 504.
    A `set_properties` to a device the twin shows offline is not sent: its values stay pending in the twin (202)
    and are delivered when the device comes back (`OnlineChanged` from this process's ingest, and a periodic
    sweep for reconnects another process ingested); a DB claim makes exactly one hub process deliver each value.
    """

    def __init__(self, *, dbs: Databases, devices: DeviceService, products: ProductService, nc: NATS,
                 timeout_s: float, bus: EventBus | None = None, sweep_s: float | None = None) -> None:
        self.dbs = dbs
        self.devices = devices
        self.products = products
        self.nc: NATS | None = nc
        self.timeout_s = timeout_s
        self.bus = bus
        self.sweep_s = sweep_s
        self.deliveries = 0  # pending desired batches this process delivered (claimed and published)
        self._waiting: dict[tuple[str, int], asyncio.Future[Any]] = {}
        self._subs: dict[str, _Watch] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._came_online: dict[str, set[str]] = {}
        self._online_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CommandService:
        if self.bus is not None:
            self.bus.subscribe(OnlineChanged, self._on_online)
        if self.sweep_s:
            self._sweeper = asyncio.create_task(self._sweep_forever(self.sweep_s), name="desired-sweep")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.bus is not None:
            self.bus.unsubscribe(OnlineChanged, self._on_online)
        for task in (self._sweeper, self._online_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for watch in list(self._subs.values()):
            if watch.sub is not None:
                with contextlib.suppress(Exception):
                    await watch.sub.unsubscribe()
        self._subs.clear()
        self.nc = None

    async def _on_reply(self, msg: Msg) -> None:
        did = msg.subject.split(".")[1]
        try:
            up = decode_up(msg.data)
        except ValueError:
            return  # the ingest worker dead-letters it
        if not up.is_reply:
            return
        fut = self._waiting.get((did, up.id))
        if fut is not None and not fut.done():
            if up.error is not None:
                fut.set_result({"error": {"code": up.error.code, "message": up.error.message}})
            else:
                fut.set_result({"result": decode_raw(up.result)})

    async def send(self, did: str, method: str, params: Any, *, actor: str, timeout_s: float | None = None,
                   info: DeviceInfo | None = None) -> dict[str, Any]:
        """Validate, record, publish, await the reply (or raise Timeout naming the command id). `info`: the device
        as the caller just read it (its access check), so it is not read again.

        A `set_properties` to a device the twin shows offline answers at once with status `pending` and the
        desired values, which are delivered when it reconnects."""
        # database work runs in a thread (this loop also carries ingest, automations and the API), in one hop: each
        # hop is a wake-up of a pool thread and of this loop, and the pool thread may wait for the GIL behind it
        nc = self.nc
        cell, prepared = await asyncio.to_thread(self._prepare, did, method, params, actor, info, nc is not None)
        if isinstance(prepared, dict):
            return prepared  # queued for an offline device
        command_id, wire = prepared
        assert nc is not None
        reply = await self._exchange(nc, cell, did, command_id, method, wire, timeout_s or self.timeout_s)
        return {"command_id": command_id, "did": did, "method": method, "status": reply["status"],
                **{k: v for k, v in reply.items() if k != "status"}}

    def _prepare(self, did: str, method: str, params: Any, actor: str, info: DeviceInfo | None,
                 connected: bool) -> tuple[str, tuple[int, Any] | dict[str, Any]]:
        """(cell, (command id, wire params)) of a recorded command, or (cell, the answer) when a set_properties
        was queued for an offline device; refuses inactive devices, commands the spec does not allow, and (503)
        commands that would have to be sent while this process has no broker connection."""
        if info is None:
            info = self.devices.get(did)
        if info.status != "active":
            raise InvalidInput(f"device {did} is {info.status}", code=ErrorCode.DEVICE_INACTIVE)
        wire = validate_command(self.products.compiled(info.model), method, params)
        if method == Method.SET_PROPERTIES:
            queued = self._queue_if_offline(info.cell, did, wire, actor)
            if queued is not None:
                return info.cell, queued
        if not connected:
            raise Unavailable("commands are not available in this process (no broker connection)",
                              code=ErrorCode.COMMANDS_UNAVAILABLE)
        return info.cell, (self._record(info.cell, did, method, wire, actor), wire)

    async def _exchange(self, nc: NATS, cell: str, did: str, command_id: int, method: str, wire: Any,
                        timeout_s: float) -> dict[str, Any]:
        """Publish a recorded command and await its reply; record the outcome (and, for set_properties, each
        desired value's code). Raises Timeout naming the command id."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[(did, command_id)] = fut
        await self._watch(nc, did)
        try:
            await nc.publish(subject_of(Topic.down(did)), encode(DownMessage(command_id, method, wire)))
            try:
                reply = await asyncio.wait_for(fut, timeout=timeout_s)
            except TimeoutError:
                await asyncio.to_thread(self._finish, cell, did, command_id, method, wire, "timeout", None)
                raise Timeout(
                    f"device {did} did not answer command {command_id} within {timeout_s:.1f}s",
                    code=ErrorCode.COMMAND_TIMEOUT, command_id=command_id,
                ) from None
        finally:
            self._waiting.pop((did, command_id), None)
            await self._unwatch(did)
        status = "failed" if "error" in reply else "replied"
        await asyncio.to_thread(self._finish, cell, did, command_id, method, wire, status, reply)
        return {"status": status, **reply}

    async def deliver_pending(self, did: str, cell: str, *, unconfirmed: bool = True) -> dict[str, Any] | None:
        """Send the device its undelivered desired values (one set_properties, in the order they were set) if this
        process wins the claim; → the outcome, or None when there was nothing to send (or another process has it).

        `unconfirmed` also resends values an earlier delivery got no reply for (on a reconnect, not in the sweep:
        a connected device that does not answer is not asked again and again)."""
        nc = self.nc
        if nc is None:
            return None
        claimed = await asyncio.to_thread(self._claim, cell, did, unconfirmed)
        if claimed is None:
            return None
        command_id, wire = claimed
        self.deliveries += 1
        try:
            reply = await self._exchange(nc, cell, did, command_id, Method.SET_PROPERTIES, wire, self.timeout_s)
        except Timeout:
            return {"command_id": command_id, "did": did, "status": "timeout", "params": wire}
        return {"command_id": command_id, "did": did, "params": wire, **reply}

    def _on_online(self, event: OnlineChanged) -> None:
        """Note a device that came online; a reconnect storm is looked up in one query per cell (most devices
        have nothing pending), a few milliseconds later."""
        if not event.online:
            return
        self._came_online.setdefault(event.cell, set()).add(event.did)
        if self._online_task is None or self._online_task.done():
            self._online_task = asyncio.get_running_loop().create_task(self._deliver_came_online(),
                                                                      name="desired-on-reconnect")

    async def _deliver_came_online(self) -> None:
        await asyncio.sleep(ONLINE_GATHER_S)
        while self._came_online:
            batch, self._came_online = self._came_online, {}
            for cell, dids in batch.items():
                try:
                    waiting = await asyncio.to_thread(self._with_pending, cell, sorted(dids))
                    await asyncio.gather(*(self.deliver_pending(did, cell) for did in waiting))
                except Exception:
                    log.exception("delivering desired values on reconnect failed (the sweep retries)")

    async def sweep(self) -> int:
        """Deliver to every online device with pending desired values (reconnects ingested by a process without
        commands, a claim whose process died); → deliveries made."""
        stale = now_ms() - int((STALE_CLAIM_S + self.timeout_s) * 1000)
        made = 0
        for cell in self.dbs.cells:
            dids = await asyncio.to_thread(self._pending_online, cell, stale)
            for did in dids:
                if await self.deliver_pending(did, cell, unconfirmed=False) is not None:
                    made += 1
        return made

    async def _sweep_forever(self, every_s: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("desired-state sweep failed")
            await asyncio.sleep(every_s)

    def _with_pending(self, cell: str, dids: list[str]) -> list[str]:
        with self.dbs.cell_session(cell) as s:
            return TwinService.with_undelivered(s, dids)

    def _pending_online(self, cell: str, stale_before_ms: int) -> list[str]:
        with self.dbs.cell_session(cell) as s:
            return TwinService.pending_online(s, stale_before_ms=stale_before_ms)

    async def _watch(self, nc: NATS, did: str) -> None:
        """Listen to the device's `up` subject while a command to it is open (one subscription per device)."""
        watch = self._subs.get(did)
        if watch is not None:
            watch.count += 1
            await watch.ready.wait()
            return
        watch = self._subs[did] = _Watch()
        try:
            # no flush (a PING round trip per command): the server reads this connection in order, so the SUB is in
            # place before the request published after it on the same connection reaches the device
            watch.sub = await nc.subscribe(subject_of(Topic.up(did)), cb=self._on_reply)
        finally:
            watch.ready.set()

    async def _unwatch(self, did: str) -> None:
        watch = self._subs[did]
        watch.count -= 1
        if watch.count == 0:
            del self._subs[did]
            if watch.sub is not None:
                with contextlib.suppress(Exception):
                    await watch.sub.unsubscribe()

    def _record(self, cell: str, did: str, method: str, wire: Any, actor: str) -> int:
        """Store the command (its id is the JSON-RPC id) and, for set_properties, the desired values it carries."""
        created = now_ms()
        with self.dbs.cell_session(cell) as s:  # Core statements: the ORM's unit of work was most of the cost
            command_id = int(s.execute(_COMMAND_INSERT, {"did": did, "method": method, "params": wire, "status": "sent",
                                                         "requested_by": actor, "created_ms": created,
                                                         "note": ""}).inserted_primary_key[0])  # type: ignore[attr-defined]
            if method == Method.SET_PROPERTIES:
                TwinService.set_desired(s, did, _desired(wire), created, order=command_id, sent_by=command_id)
        return command_id

    def _queue_if_offline(self, cell: str, did: str, wire: Any, actor: str) -> dict[str, Any] | None:
        """For a device the twin shows offline: keep the values pending (a newer value replaces an older one not
        delivered yet) and record the request as `queued`; → the answer, or None when the device is not offline."""
        created = now_ms()
        with self.dbs.cell_session(cell) as s:
            if not TwinService.is_offline(s, did):
                return None
            row = Command(did=did, method=Method.SET_PROPERTIES, params=wire, status="queued", requested_by=actor,
                          created_ms=created, note="device offline: desired values pending until it reconnects")
            s.add(row)
            s.flush()
            command_id = int(row.id)
            desired = _desired(wire)
            TwinService.set_desired(s, did, desired, created, order=command_id)
        return {"command_id": command_id, "did": did, "method": str(Method.SET_PROPERTIES), "status": "pending",
                "desired": desired}

    def _claim(self, cell: str, did: str, unconfirmed: bool) -> tuple[int, list[dict[str, Any]]] | None:
        """Record a delivery command and claim the device's undelivered desired values for it (one transaction);
        None when none were left to send. Each value is checked again against the product's current spec (a new
        major version may have made it read-only or out of range since it was set): one the spec no longer allows
        is recorded failed with the code the device would answer, and not sent."""
        compiled = self.products.compiled(self.devices.get(did).model)
        created = now_ms()
        with self.dbs.cell_session(cell) as s:
            row = Command(did=did, method=Method.SET_PROPERTIES, params=[], status="sent", requested_by="desired",
                          created_ms=created, note="pending desired values, delivered on reconnect")
            s.add(row)
            s.flush()
            command_id = int(row.id)
            claimed = TwinService.claim_pending(s, did, command_id, created, unconfirmed=unconfirmed)
            wire, refused = [], {}
            for key, value in claimed:
                item = {"siid": int(key.split(".")[0]), "piid": int(key.split(".")[1]), "value": value}
                try:
                    validate_command(compiled, Method.SET_PROPERTIES, [item])
                except (InvalidInput, NotFound) as err:
                    refused[key] = int(_REFUSED.get(str(err.code), Code.VALUE_OUT_OF_RANGE))
                    continue
                wire.append(item)
            if refused:
                TwinService.record_delivery(s, did, command_id, refused)
            if not wire:
                if refused:
                    row.status, row.finished_ms, row.note = "failed", created, "the current spec refuses every value"
                    row.params = [{"key": k, "code": c} for k, c in refused.items()]
                else:
                    s.delete(row)
                return None
            row.params = wire
        return command_id, wire

    def _finish(self, cell: str, did: str, command_id: int, method: str, wire: Any, status: str,
                reply: Any) -> None:
        with self.dbs.cell_session(cell) as s:
            s.execute(_COMMAND_FINISH, {"command_id": command_id, "status": status,
                                        "reply": msgspec.to_builtins(reply), "finished_ms": now_ms()})
            if method == Method.SET_PROPERTIES:
                TwinService.record_delivery(s, did, command_id, _codes(wire, reply))


_COMMANDS = Command.__table__
_COMMAND_INSERT = insert(_COMMANDS)  # type: ignore[arg-type]
_COMMAND_FINISH = (update(_COMMANDS).where(_COMMANDS.c.id == bindparam("command_id"))  # type: ignore[arg-type]
                   .values(status=bindparam("status"), reply=bindparam("reply"),
                           finished_ms=bindparam("finished_ms")))

# what a device answers to a value its spec refuses, by the hub's error code
_REFUSED = {str(ErrorCode.PROPERTY_NOT_WRITABLE): Code.PROPERTY_NOT_WRITABLE,
            str(ErrorCode.UNKNOWN_PROPERTY): Code.PROPERTY_NOT_FOUND, str(ErrorCode.WRONG_TYPE): Code.WRONG_TYPE}


def _desired(wire: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{p['siid']}.{p['piid']}": p["value"] for p in wire}


def _device_code(code: Any) -> int:
    """A device's answer code as the twin stores it (a 32-bit integer column): anything else, or a code no MIoT
    device sends, is recorded as an internal error of the device."""
    if isinstance(code, bool) or not isinstance(code, int) or not -2**31 <= code < 2**31:
        return int(Code.INTERNAL_ERROR)
    return code


def _codes(wire: list[dict[str, Any]], reply: Any) -> dict[str, int] | None:
    """Per desired key the device's code: from each result item, or the error's code for all; None: no reply."""
    if reply is None:
        return None
    keys = [f"{p['siid']}.{p['piid']}" for p in wire]
    if "error" in reply:
        return dict.fromkeys(keys, _device_code(reply["error"].get("code") or int(Code.INTERNAL_ERROR)))
    codes: dict[str, int] = {}
    result = reply.get("result")
    for item in result if isinstance(result, list) else []:
        if isinstance(item, dict) and isinstance(item.get("siid"), int) and isinstance(item.get("piid"), int):
            codes[f"{item['siid']}.{item['piid']}"] = _device_code(item.get("code", 0))
    # a key the device left out of its answer counts as refused: it did not say it applied it
    return {k: codes.get(k, int(Code.INTERNAL_ERROR)) for k in keys}
