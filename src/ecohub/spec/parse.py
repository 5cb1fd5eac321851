"""Parsing a miot-spec-v2 instance document (plus ecohub's fields) into a Spec, listing every problem with its path."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from ecohub.spec.domain import (
    FORMATS,
    INT_BOUNDS,
    Access,
    Action,
    Event,
    Property,
    Service,
    Spec,
    SpecInvalid,
    SpecProblem,
    ValueListItem,
    ValueRange,
)


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


class _Parser:
    """Walks a document once, collecting every problem with its path."""

    def __init__(self) -> None:
        self.problems: list[SpecProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(path, message))

    def text(self, obj: dict[str, Any], key: str, path: str, *, required: bool = True) -> str:
        value = obj.get(key)
        if value is None:
            if required:
                self.problem(f"{path}.{key}", "missing")
            return ""
        if not isinstance(value, str):
            self.problem(f"{path}.{key}", f"must be a string, got {type(value).__name__}")
            return ""
        return value

    def iid(self, obj: dict[str, Any], path: str, seen: set[int], what: str) -> int | None:
        raw = obj.get("iid")
        if not _is_int(raw) or raw < 1:
            self.problem(f"{path}.iid", f"must be a positive integer, got {raw!r}")
            return None
        value = int(raw)
        if value in seen:
            self.problem(f"{path}.iid", f"duplicate {what} iid {value}")
        seen.add(value)
        return value

    def items(self, obj: dict[str, Any], key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
        value = obj.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"{path}.{key}", "must be a list")
            return []
        out = []
        for i, item in enumerate(value):
            p = f"{path}.{key}[{i}]" if path else f"{key}[{i}]"
            if not isinstance(item, dict):
                self.problem(p, "must be an object")
                continue
            out.append((p, item))
        return out

    def spec(self, doc: Any) -> Spec | None:
        if not isinstance(doc, dict):
            self.problem("$", "a spec document must be a JSON object")
            return None
        type_ = self.text(doc, "type", "$")
        if type_ and not type_.startswith("urn:"):
            self.problem("$.type", f"must be a URN like urn:miot-spec-v2:device:outlet:0000A002:..., got {type_!r}")
        description = self.text(doc, "description", "$", required=False)
        seen: set[int] = set()
        services = []
        svc_items = self.items(doc, "services", "")
        if not svc_items and "services" not in doc:
            self.problem("services", "missing")
        for path, svc in svc_items:
            service = self.service(svc, path, seen)
            if service is not None:
                services.append(service)
        if self.problems:
            return None
        return Spec(type_, description, tuple(services), doc)

    def service(self, svc: dict[str, Any], path: str, seen: set[int]) -> Service | None:
        siid = self.iid(svc, path, seen, "service")
        type_ = self.text(svc, "type", path)
        description = self.text(svc, "description", path, required=False)
        if siid is None:
            return None
        pseen: set[int] = set()
        props = [self.property(siid, p, pp, pseen) for pp, p in self.items(svc, "properties", path)]
        piids = {p.iid for p in props if p is not None}
        aseen: set[int] = set()
        actions = [self.action(siid, a, ap, aseen, piids) for ap, a in self.items(svc, "actions", path)]
        eseen: set[int] = set()
        events = [self.event(siid, e, ep, eseen, piids) for ep, e in self.items(svc, "events", path)]
        return Service(
            siid,
            type_,
            description,
            tuple(p for p in props if p is not None),
            tuple(a for a in actions if a is not None),
            tuple(e for e in events if e is not None),
        )

    def property(self, siid: int, prop: dict[str, Any], path: str, seen: set[int]) -> Property | None:
        piid = self.iid(prop, path, seen, "property")
        type_ = self.text(prop, "type", path)
        description = self.text(prop, "description", path, required=False)
        fmt = self.text(prop, "format", path)
        if fmt and fmt not in FORMATS:
            self.problem(f"{path}.format", f"unknown format {fmt!r} (expected one of {', '.join(sorted(FORMATS))})")
            fmt = ""
        access = self.access(prop.get("access", []), f"{path}.access")
        unit = prop.get("unit")
        if unit is not None and not isinstance(unit, str):
            self.problem(f"{path}.unit", "must be a string")
            unit = None
        value_range = self.value_range(prop.get("value-range"), fmt, f"{path}.value-range")
        value_list = self.value_list(prop.get("value-list"), fmt, f"{path}.value-list")
        if value_range is not None and value_list is not None:
            self.problem(path, "has both value-range and value-list")
        max_length = prop.get("max-length")
        if max_length is not None and (not _is_int(max_length) or max_length < 0):
            self.problem(f"{path}.max-length", "must be a non-negative integer")
            max_length = None
        if piid is None or not fmt:
            return None
        return Property(siid, piid, type_, description, fmt, access, unit, value_range, value_list, max_length)

    def access(self, value: Any, path: str) -> frozenset[Access]:
        if not isinstance(value, list):
            self.problem(path, "must be a list of read/write/notify")
            return frozenset()
        flags = set()
        for i, flag in enumerate(value):
            try:
                access = Access(flag)
            except ValueError:
                self.problem(f"{path}[{i}]", f"unknown access flag {flag!r} (expected read, write or notify)")
                continue
            if access in flags:
                self.problem(f"{path}[{i}]", f"duplicate access flag {flag!r}")
            flags.add(access)
        return frozenset(flags)

    def value_range(self, value: Any, fmt: str, path: str) -> ValueRange | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) not in (2, 3) or not all(_is_num(v) for v in value):
            self.problem(path, f"must be [min, max, step] numbers, got {value!r}")
            return None
        if fmt in ("bool", "string"):
            self.problem(path, f"not allowed on format {fmt!r}")
            return None
        lo, hi = value[0], value[1]
        step = value[2] if len(value) == 3 else 0
        ok = True
        if lo > hi:
            self.problem(path, f"min > max ({lo} > {hi})")
            ok = False
        if step < 0:
            self.problem(path, f"step must not be negative, got {step}")
            ok = False
        if fmt in INT_BOUNDS:
            fmin, fmax = INT_BOUNDS[fmt]
            if not (_is_int(lo) and _is_int(hi) and _is_int(step)):
                self.problem(path, f"min, max and step must be integers for format {fmt!r}")
                ok = False
            elif lo < fmin or hi > fmax:
                self.problem(path, f"[{lo}, {hi}] exceeds the bounds of {fmt} [{fmin}, {fmax}]")
                ok = False
        return ValueRange(lo, hi, step) if ok else None

    def value_list(self, value: Any, fmt: str, path: str) -> tuple[ValueListItem, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            self.problem(path, "must be a non-empty list of {value, description}")
            return None
        items: list[ValueListItem] = []
        seen: set[Any] = set()
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(item, dict) or "value" not in item:
                self.problem(p, "must be an object with 'value' and 'description'")
                continue
            v = item["value"]
            if fmt in INT_BOUNDS and not _is_int(v):
                self.problem(f"{p}.value", f"must be an integer for format {fmt!r}, got {v!r}")
            elif fmt in INT_BOUNDS and not INT_BOUNDS[fmt][0] <= v <= INT_BOUNDS[fmt][1]:
                self.problem(f"{p}.value", f"{v} exceeds the bounds of {fmt}")
            elif fmt == "bool" and not isinstance(v, bool):
                self.problem(f"{p}.value", f"must be true/false for format 'bool', got {v!r}")
            elif fmt == "string" and not isinstance(v, str):
                self.problem(f"{p}.value", f"must be a string for format 'string', got {v!r}")
            elif fmt == "float" and not _is_num(v):
                self.problem(f"{p}.value", f"must be a number for format 'float', got {v!r}")
            key = (type(v).__name__, v) if isinstance(v, (int, float, str, bool)) else repr(v)
            if key in seen:
                self.problem(f"{p}.value", f"duplicate value {v!r}")
            seen.add(key)
            description = item.get("description", "")
            items.append(ValueListItem(v, description if isinstance(description, str) else str(description)))
        return tuple(items)

    def refs(self, obj: dict[str, Any], key: str, path: str, piids: set[int]) -> tuple[int, ...]:
        value = obj.get(key, [])
        if not isinstance(value, list):
            self.problem(f"{path}.{key}", "must be a list of property iids")
            return ()
        out = []
        for i, ref in enumerate(value):
            if not _is_int(ref):
                self.problem(f"{path}.{key}[{i}]", f"must be a property iid, got {ref!r}")
            elif ref not in piids:
                self.problem(f"{path}.{key}[{i}]", f"refers to property iid {ref} which this service does not have")
            else:
                out.append(ref)
        return tuple(out)

    def action(self, siid: int, act: dict[str, Any], path: str, seen: set[int], piids: set[int]) -> Action | None:
        aiid = self.iid(act, path, seen, "action")
        type_ = self.text(act, "type", path)
        description = self.text(act, "description", path, required=False)
        in_ = self.refs(act, "in", path, piids)
        out = self.refs(act, "out", path, piids)
        return Action(siid, aiid, type_, description, in_, out) if aiid is not None else None

    def event(self, siid: int, ev: dict[str, Any], path: str, seen: set[int], piids: set[int]) -> Event | None:
        eiid = self.iid(ev, path, seen, "event")
        type_ = self.text(ev, "type", path)
        description = self.text(ev, "description", path, required=False)
        args = self.refs(ev, "arguments", path, piids)
        return Event(siid, eiid, type_, description, args) if eiid is not None else None


def parse_spec(document: Any) -> Spec:
    """Parse and check a spec document; raises SpecInvalid listing every problem with its path."""
    parser = _Parser()
    spec = parser.spec(document)
    if parser.problems or spec is None:
        raise SpecInvalid(parser.problems or [SpecProblem("$", "invalid spec")])
    return spec
