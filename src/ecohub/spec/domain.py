"""The product spec model (MIoT-spec-v2 compatible) and its structural validation with paths."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

INT_BOUNDS: dict[str, tuple[int, int]] = {
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
FORMATS: frozenset[str] = frozenset({"bool", "float", "string", *INT_BOUNDS})


class Access(StrEnum):
    """Access flags of a property."""

    READ = "read"
    WRITE = "write"
    NOTIFY = "notify"


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One thing wrong with a spec document, located by a JSON-ish path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecInvalid(ValueError):
    """A spec document has problems; all of them are listed, not only the first."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class ValueRange:
    """value-range [min, max, step]."""

    min: float
    max: float
    step: float


@dataclass(frozen=True, slots=True)
class ValueListItem:
    """One entry of a value-list."""

    value: Any
    description: str


@dataclass(frozen=True, slots=True)
class Property:
    """A property of a service."""

    siid: int
    iid: int
    type: str
    description: str
    format: str
    access: frozenset[Access]
    unit: str | None = None
    value_range: ValueRange | None = None
    value_list: tuple[ValueListItem, ...] | None = None
    max_length: int | None = None

    @property
    def key(self) -> str:
        """The `siid.piid` key used outside the device protocol."""
        return f"{self.siid}.{self.iid}"

    @property
    def name(self) -> str:
        """The short name from the URN (e.g. `on`, `brightness`)."""
        return urn_name(self.type)

    @property
    def readable(self) -> bool:
        return Access.READ in self.access

    @property
    def writable(self) -> bool:
        return Access.WRITE in self.access

    @property
    def notifies(self) -> bool:
        return Access.NOTIFY in self.access


@dataclass(frozen=True, slots=True)
class Action:
    """An action of a service: input and output arguments are property iids."""

    siid: int
    iid: int
    type: str
    description: str
    in_: tuple[int, ...] = ()
    out: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return urn_name(self.type)


@dataclass(frozen=True, slots=True)
class Event:
    """An event of a service: its arguments are property iids."""

    siid: int
    iid: int
    type: str
    description: str
    arguments: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return urn_name(self.type)


@dataclass(frozen=True, slots=True)
class Service:
    """A service: a group of properties, actions and events."""

    iid: int
    type: str
    description: str
    properties: tuple[Property, ...] = ()
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def name(self) -> str:
        return urn_name(self.type)


@dataclass(frozen=True, slots=True)
class Spec:
    """A parsed, valid spec document; `document` is the original, unchanged."""

    type: str
    description: str
    services: tuple[Service, ...]
    document: dict[str, Any] = field(repr=False, compare=False)

    def properties(self) -> list[Property]:
        """Every property of every service."""
        return [p for s in self.services for p in s.properties]

    def prop(self, siid: int, piid: int) -> Property | None:
        """The property at siid/piid, or None."""
        for s in self.services:
            if s.iid == siid:
                for p in s.properties:
                    if p.iid == piid:
                        return p
        return None

    def service(self, siid: int) -> Service | None:
        return next((s for s in self.services if s.iid == siid), None)

    def action(self, siid: int, aiid: int) -> Action | None:
        s = self.service(siid)
        return next((a for a in s.actions if a.iid == aiid), None) if s else None

    def event(self, siid: int, eiid: int) -> Event | None:
        s = self.service(siid)
        return next((e for e in s.events if e.iid == eiid), None) if s else None

    @property
    def hash(self) -> str:
        return spec_hash(self.document)


def urn_name(urn: str) -> str:
    """`urn:miot-spec-v2:property:on:00000006:...` → `on`."""
    parts = urn.split(":")
    return parts[3] if len(parts) > 3 else urn


def spec_hash(document: dict[str, Any]) -> str:
    """A stable sha256 of the document's canonical JSON; certification reports pin it."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
