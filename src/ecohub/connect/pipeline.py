"""Turn one MQTT message into accepted values and dead letters: decode, authorise, validate (no I/O)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from ecohub.protocol import Channel, Method, parse_topic
from ecohub.protocol.messages import (
    MAX_DEPTH,
    DecodeError,
    OtaProgressParams,
    decode_event,
    decode_ota_progress,
    decode_properties,
    decode_up,
    nesting_depth,
)
from ecohub.spec import CompiledSpec

log = logging.getLogger(__name__)
DEAD_PAYLOAD_KEEP = 4096
MAX_FIRMWARE_VERSION = 32
MAX_FUTURE_SKEW_MS = 24 * 3600 * 1000
# (models answered from memory, devices to read) and the read of those (blocking): DeviceService's
CachedModels = Callable[[Iterable[str]], tuple[dict[str, str | None], list[str]]]
ReadModels = Callable[[list[str]], dict[str, str | None]]


class DeadCode(StrEnum):
    """Machine codes of dead letters (documented in docs/protocol.md)."""

    OVERSIZED = "oversized"
    FORGED_TOPIC = "forged_topic"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_JSON = "bad_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_METHOD = "unknown_method"
    UNKNOWN_PROPERTY = "unknown_property"
    NOT_REPORTABLE = "not_reportable"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_EVENT = "unknown_event"
    BAD_EVENT_ARGUMENT = "bad_event_argument"
    BAD_STATE = "bad_state"
    WRITE_FAILED = "write_failed"
    UNDELIVERABLE = "undeliverable"


@dataclass(slots=True)
class Processed:
    """What one message contributes to a batch."""

    topic: str
    payload: bytes
    cell: str | None = None
    did: str | None = None
    model: str | None = None
    msg_id: int | None = None
    ts: int = 0
    seq: int = 0  # arrival order at the broker (the twin's newer-wins rule)
    samples: list[tuple[str, Any]] = field(default_factory=list)  # (key, value)
    events: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    online: bool | None = None
    firmware_version: str | None = None  # what the device said it runs when it came online
    ota_progress: OtaProgressParams | None = None  # an ota_progress notification (the ota context acts on it)
    dead: list[tuple[str, str]] = field(default_factory=list)  # (code, reason)
    is_reply: bool = False

    write_failed: bool = False

    def refuse(self, code: str, reason: str) -> Processed:
        """Record why (part of) this message is refused."""
        self.dead.append((code, reason))
        return self

    def as_write_failure(self, reason: str, *, code: str | None = None) -> Processed:
        """This message as a dead letter only: nothing of it is stored but the record of why."""
        failed = Processed(self.topic, self.payload, cell=self.cell, did=self.did, model=None, ts=self.ts,
                           seq=self.seq, write_failed=True)
        return failed.refuse(code or DeadCode.WRITE_FAILED, reason)


@dataclass(frozen=True, slots=True)
class Route:
    """What a topic resolves to: the device's cell, model and compiled spec, or why its messages are refused."""

    cell: str
    did: str | None = None
    model: str | None = None
    spec: CompiledSpec | None = None
    state: bool = False
    refusal: tuple[str, str] | None = None


class Pipeline:
    """Decode → authorise (topic did is a known device) → validate against the compiled spec."""

    def __init__(self, *, max_payload: int, model_of: Callable[[str], str | None],
                 compiled_of: Callable[[str], CompiledSpec], cell_of: Callable[[str], str],
                 default_cell: str, cached_models: CachedModels, read_models: ReadModels) -> None:
        self.max_payload = max_payload
        self.model_of = model_of
        self.cached_models = cached_models
        self.read_models = read_models
        self.compiled_of = compiled_of
        self.cell_of = cell_of
        self.default_cell = default_cell

    def process(self, topic: str, payload: bytes, received_ms: int,
                routes: dict[str, Route] | None = None, models: Mapping[str, str | None] | None = None) -> Processed:
        """Never raises: every problem becomes a dead-letter reason (a bug on one message stops no other).

        `routes` memoizes the per-topic look-ups (device, cell, model, spec) across the messages of one batch."""
        try:
            return self._process(topic, payload, received_ms, routes, models)
        except Exception as err:
            log.warning("ingest pipeline failed on a message of %s: %r", topic[:256], err)
            parsed = parse_topic(topic)
            out = Processed(topic, payload, ts=received_ms, cell=self.default_cell,
                            did=parsed.did if parsed is not None else None)
            with contextlib.suppress(Exception):
                out.cell = self.cell_of(out.did) if out.did else self.default_cell
            return out.refuse(DeadCode.INVALID_MESSAGE, f"the message could not be processed: "
                              f"{type(err).__name__}: {str(err)[:200]}")

    def process_batch(self, messages: Iterable[tuple[str, bytes]], received_ms: int,
                      models: Mapping[str, str | None] | None = None) -> list[Processed]:
        """`process` of each (topic, payload); a device's look-ups are made once per batch. `models`: the devices'
        models as `lookup` found them (a device missing there is looked up one by one)."""
        routes: dict[str, Route] = {}
        return [self.process(topic, payload, received_ms, routes, models) for topic, payload in messages]

    def cached(self, topics: Iterable[str]) -> tuple[dict[str, str | None], list[str]]:
        """No I/O: (models of the topics' devices memory can answer for, the devices `lookup` must read)."""
        return self.cached_models({parsed.did for t in set(topics) if (parsed := parse_topic(t)) is not None})

    def lookup(self, dids: list[str]) -> dict[str, str | None]:
        """The models of these devices from the store, in a few queries (blocking: call it off the event loop)."""
        return self.read_models(dids)

    def _route(self, topic: str, models: Mapping[str, str | None] | None = None) -> Route:
        parsed = parse_topic(topic)
        if parsed is None or parsed.channel == Channel.DOWN:
            return Route(self.default_cell, refusal=(DeadCode.FORGED_TOPIC, f"{topic!r} is not a device up/state "
                                                     "topic"))
        try:
            cell = self.cell_of(parsed.did)
        except Exception as err:
            return Route(self.default_cell, parsed.did, refusal=(DeadCode.FORGED_TOPIC, str(err)))
        model = models[parsed.did] if models is not None and parsed.did in models else self.model_of(parsed.did)
        if model is None:
            return Route(cell, parsed.did, refusal=(DeadCode.UNKNOWN_DEVICE,
                                                    f"{parsed.did} is not an active provisioned device"))
        state = parsed.channel == Channel.STATE
        return Route(cell, parsed.did, model, None if state else self.compiled_of(model), state)

    def _process(self, topic: str, payload: bytes, received_ms: int, routes: dict[str, Route] | None,
                 models: Mapping[str, str | None] | None = None) -> Processed:
        route = routes.get(topic) if routes is not None else None
        if route is None:
            route = self._route(topic, models)
            if routes is not None:
                routes[topic] = route
        out = Processed(topic, payload, ts=received_ms, cell=route.cell, did=route.did)
        if route.refusal is not None and route.refusal[0] == DeadCode.FORGED_TOPIC:
            return out.refuse(*route.refusal)  # before the size check, as a forged topic says more
        if len(payload) > self.max_payload:
            return out.refuse(DeadCode.OVERSIZED, f"payload of {len(payload)} bytes exceeds {self.max_payload}")
        if route.refusal is not None:
            return out.refuse(*route.refusal)
        out.model = route.model
        if route.state:
            return self._state(out, payload)
        assert route.spec is not None
        return self._up(out, payload, route.spec, received_ms)

    def _state(self, out: Processed, payload: bytes) -> Processed:
        if not payload:
            return out  # a cleared retained message carries no state
        if nesting_depth(payload) > MAX_DEPTH:
            return out.refuse(DeadCode.BAD_STATE, f"state is nested deeper than {MAX_DEPTH} levels")
        try:
            state = msgspec.json.decode(payload)
        except msgspec.DecodeError as err:
            return out.refuse(DeadCode.BAD_JSON, f"state is not JSON: {err}")
        if not isinstance(state, dict) or not isinstance(state.get("online"), bool):
            return out.refuse(DeadCode.BAD_STATE, 'state must be {"online": true|false}')
        out.online = state["online"]
        version = state.get("firmware_version")
        if version is not None:
            if not isinstance(version, str) or not 0 < len(version) <= MAX_FIRMWARE_VERSION:
                return out.refuse(DeadCode.BAD_STATE, f"firmware_version must be a string of 1 to "
                                  f"{MAX_FIRMWARE_VERSION} characters")
            out.firmware_version = version
        return out

    def _up(self, out: Processed, payload: bytes, spec: CompiledSpec, received_ms: int) -> Processed:
        try:
            msg = decode_up(payload)
        except DecodeError as err:
            text = str(err)
            malformed = "malformed" in text or "truncated" in text
            code = DeadCode.BAD_JSON if malformed else DeadCode.INVALID_MESSAGE
            return out.refuse(code, str(err))
        out.msg_id = msg.id
        if msg.ts is not None and 0 < msg.ts <= received_ms + MAX_FUTURE_SKEW_MS:
            out.ts = msg.ts
        if msg.is_reply:
            out.is_reply = True
            return out
        if msg.method == Method.PROPERTIES_CHANGED:
            return self._properties(out, msg.params, spec)
        if msg.method == Method.EVENT_OCCURED:
            return self._event(out, msg.params, spec)
        if msg.method == Method.OTA_PROGRESS:
            try:
                out.ota_progress = decode_ota_progress(msg.params)
            except DecodeError as err:
                return out.refuse(DeadCode.INVALID_MESSAGE, str(err))
            return out
        return out.refuse(DeadCode.UNKNOWN_METHOD, f"method {msg.method!r} is not a device notification "
                          "(expected properties_changed, event_occured or ota_progress)")

    def _properties(self, out: Processed, raw: msgspec.Raw, spec: CompiledSpec) -> Processed:
        try:
            items = decode_properties(raw)
        except DecodeError as err:
            return out.refuse(DeadCode.INVALID_MESSAGE, str(err))
        if not items:
            return out.refuse(DeadCode.INVALID_MESSAGE, "params is empty")
        for i, item in enumerate(items):
            cp = spec.properties.get((item.siid, item.piid))
            where = f"params[{i}] ({item.siid}.{item.piid})"
            if cp is None:
                out.refuse(DeadCode.UNKNOWN_PROPERTY, f"{where}: no such property in {spec.spec.type}")
                continue
            if not (cp.notifies or cp.readable):
                out.refuse(DeadCode.NOT_REPORTABLE, f"{where}: property is neither readable nor notify")
                continue
            problem = cp.check(item.value)
            if problem is not None:
                out.refuse(problem.kind, f"{where}: {problem.message}")
                continue
            out.samples.append((f"{item.siid}.{item.piid}", item.value))
        return out

    def _event(self, out: Processed, raw: msgspec.Raw, spec: CompiledSpec) -> Processed:
        try:
            ev = decode_event(raw)
        except DecodeError as err:
            return out.refuse(DeadCode.INVALID_MESSAGE, str(err))
        declared = spec.events.get((ev.siid, ev.eiid))
        if declared is None:
            return out.refuse(DeadCode.UNKNOWN_EVENT, f"event {ev.siid}.{ev.eiid} is not in the spec")
        args: dict[str, Any] = {}
        for i, arg in enumerate(ev.arguments):
            where = f"params.arguments[{i}] (piid {arg.piid})"
            if arg.piid not in declared.arguments:
                return out.refuse(DeadCode.BAD_EVENT_ARGUMENT,
                                  f"{where}: not an argument of event {ev.siid}.{ev.eiid}")
            problem = spec.check_value(ev.siid, arg.piid, arg.value)
            if problem is not None:
                return out.refuse(DeadCode.BAD_EVENT_ARGUMENT, f"{where}: {problem.message}")
            args[f"{ev.siid}.{arg.piid}"] = arg.value
        out.events.append((ev.siid, ev.eiid, args))
        return out
