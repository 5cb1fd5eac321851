"""The data registry: each context registers how its own personal tables answer privacy's questions.

Privacy owns the registry and never reads another context's tables itself: the owner of a table hands in a
`StoreHandler` (which rows are the subject's, how to erase them, what to open before export), and the owners of
accounts (home), devices (connect) and twins (twin) hand in the few look-ups privacy needs as plain functions.
The handler gives its own `Table`, so privacy's streaming writer can render the rows in the database (one fetch
per row for a million telemetry rows) without knowing the table's models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, and_, delete, false, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.ddl import sort_tables

from ecohub.errors import EcohubError, ErrorCode
from ecohub.privacy.datamap import personal_tables

if TYPE_CHECKING:
    from ecohub.privacy.crypto import SubjectKeys
    from ecohub.privacy.sealing import Opener


class UnhandledStores(EcohubError):
    """A table the data map declares personal is covered by no registered handler (or a look-up is missing)."""

    code = ErrorCode.STORE_UNHANDLED


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows: the user, the homes they own, and their bound devices with the epoch they own."""

    user_id: str
    homes: tuple[str, ...]
    devices: dict[str, int]  # did → bound_ms

    @property
    def actor(self) -> str:
        """How the user appears in `requested_by`/actor columns."""
        return f"user:{self.user_id}"

    def of_devices(self, did: Any) -> ColumnElement[bool]:
        """Rows whose device column names one of the user's bound devices."""
        return did.in_(list(self.devices)) if self.devices else false()

    def of_homes(self, home_id: Any) -> ColumnElement[bool]:
        """Rows whose home column names one of the user's homes."""
        return home_id.in_(list(self.homes)) if self.homes else false()

    def owned_epoch(self, did: Any, ts: Any) -> ColumnElement[bool]:
        """Rows of the user's devices from the time they bound them (earlier data belongs to a previous owner)."""
        if not self.devices:
            return false()
        return or_(*(and_(did == d, ts >= since) for d, since in self.devices.items()))


@dataclass(frozen=True, slots=True)
class ExportContext:
    """What a handler's export transform may use: the subject, their data key (if any) and an opener."""

    session: Session
    cell: str
    subject_id: str
    subject_key: bytes | None
    opener: Opener


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A payload column sealed with the owner's key: the column, the columns its AAD is built from, the AAD."""

    column: str
    aad_columns: tuple[str, ...]
    aad: Callable[..., bytes]


Where = Callable[[Scope], ColumnElement[bool]]
Eraser = Callable[[Session, Scope], dict[str, Any]]
Transform = Callable[[dict[str, Any], ExportContext], dict[str, Any]]
Rectifier = Callable[[Session, str, str, str], list[str]]  # (s, cell, subject, new email) → fields changed


@dataclass(frozen=True, slots=True)
class StoreHandler:
    """How one personal table answers a data-subject request; registered by the context that owns the table."""

    table: Table
    context: str
    where: Where
    erase: Eraser | None = None  # default: delete the rows `where` selects
    retained: str | None = None  # kept on erasure, with the reason (Art. 17(3))
    exported: bool = True  # False for key material, which is never exported
    transform: Transform | None = None  # opens or masks columns of each exported row
    sealed: SealedColumn | None = None
    rectify_email: Rectifier | None = None
    plane: str = "cell"

    @property
    def name(self) -> str:
        """The table's name, as the data map and the DSR steps know it."""
        return str(self.table.name)

    def erase_rows(self, s: Session, sc: Scope) -> dict[str, Any]:
        """Delete (or de-identify, if the owner says so) the subject's rows; → counts."""
        if self.erase is not None:
            return self.erase(s, sc)
        return {"deleted": s.execute(delete(self.table).where(self.where(sc))).rowcount}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Needle:
    """An identifier of a subject: where the subject lives and what kind of identifier it is (never shown)."""

    cell: str
    subject: str
    kind: str


@dataclass(frozen=True, slots=True)
class ReportedValue:
    """A twin's last reported value as stored (sealed when the device is bound)."""

    did: str
    key: str
    value: Any
    subject: str | None
    sealed: bytes | None
    ts: int | None


@dataclass(frozen=True, slots=True)
class SubjectDirectory:
    """How privacy finds and checks a data subject; registered by the context that owns the accounts."""

    exists: Callable[[str, str], bool]  # (cell, user_id)
    verify_password: Callable[[str, str, str | None], bool]  # (cell, user_id, password)
    scope: Callable[[Session, str], Scope]
    locate_email: Callable[[str], tuple[str, str] | None]  # → (cell, user_id) holding this address


@dataclass
class Lookups:
    """Facts about devices privacy asks their owners for, each a function of a cell session."""

    subjects: SubjectDirectory | None = None
    owners: Callable[[Session, Sequence[str]], list[tuple[str, int, str]]] | None = None  # (did, bound_ms, owner)
    makers: Callable[[Session, Sequence[str]], dict[str, str | None]] | None = None  # did → partner
    partner_devices: Callable[[Session, str], dict[str, str]] | None = None  # did → model
    online: Callable[[Session, Sequence[str]], set[str]] | None = None  # the dids among these that are online
    release: Callable[[str, Sequence[str]], int] | None = None  # (cell, dids): unbind and re-key an erased user's
    reported: Callable[[Session, Sequence[str]], list[ReportedValue]] | None = None
    needles: list[Callable[[Session, str, SubjectKeys], Iterable[tuple[str, Needle]]]] = field(default_factory=list)
    residency_findings: list[Callable[[Session, str], list[dict[str, Any]]]] = field(default_factory=list)

    def missing(self) -> list[str]:
        """Names of the look-ups no context registered."""
        return [f.name for f in fields(self) if getattr(self, f.name) in (None, [])]


class DataRegistry:
    """One registry, owned by privacy, filled by the owners of the tables at bootstrap."""

    def __init__(self) -> None:
        self.handlers: dict[str, StoreHandler] = {}
        self.lookups = Lookups()

    def add(self, *handlers: StoreHandler) -> None:
        """Register handlers; a table handled twice is a wiring bug."""
        for h in handlers:
            if h.name in self.handlers:
                raise ValueError(f"{h.plane}.{h.name} is already handled by {self.handlers[h.name].context}")
            self.handlers[h.name] = h

    def handler(self, name: str) -> StoreHandler | None:
        """The handler of a table, if one is registered."""
        return self.handlers.get(name)

    def unhandled(self, plane: str = "cell") -> list[str]:
        """Tables the data map declares personal that no registered handler covers."""
        return [t for t in personal_tables(plane) if t not in self.handlers]

    def erase_order(self, names: Iterable[str]) -> list[str]:
        """Names sorted children first, so foreign keys hold while deleting (by the tables' own foreign keys)."""
        parents_first = [t.name for t in sort_tables([h.table for h in self.handlers.values()])]
        rank = {n: i for i, n in enumerate(reversed(parents_first))}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))

    def check(self) -> None:
        """Raise UnhandledStores naming every personal table without a handler and every missing look-up."""
        problems = [f"cell.{t} holds personal data but no context registered a handler for it"
                    for t in self.unhandled()]
        problems += [f"no context registered the {name!r} look-up" for name in self.lookups.missing()]
        if problems:
            raise UnhandledStores("; ".join(problems), stores=self.unhandled())

