"""The data map: every column of both planes declared personal (with purpose, basis, retention) or not."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData

from ecohub.privacy.domain import (
    Declaration,
    NotPersonal,
    PersonalData,
)
from ecohub.store.db import CellBase, GlobalBase, plane_metadata

PLANES = {"global_plane": GlobalBase, "cell": CellBase}

RECIPIENTS = {"operating the user's devices": "the device's maker (partner): pseudonymous recent values, only with "
                                              "consent to device_diagnostics_to_maker"}
MEASURES = ("region cell per user (no transfer out of the cell)", "per-subject AES-256-GCM keys wrapped by a "
            "per-cell key (crypto-shredding) sealing emails, names of homes, rooms and devices, and the telemetry, "
            "event and twin values of bound devices", "keyed email hash for lookup", "hash-chained audit log of staff "
            "and partner reads", "argon2id passwords, sha256-only tokens")


@dataclass(frozen=True, slots=True)
class ColumnEntry:
    """One column of the data map."""

    plane: str
    table: str
    column: str
    declaration: Declaration | None

    @property
    def personal(self) -> bool:
        """True when the column holds personal data."""
        return isinstance(self.declaration, PersonalData)


def _metadata(plane: str) -> MetaData:
    return plane_metadata(plane)


def _declared(plane: str) -> dict[str, dict[str, Declaration]]:
    """table → column → declaration, from each model's `__privacy__`."""
    _metadata(plane)  # imports every model first
    out: dict[str, dict[str, Declaration]] = {}
    for mapper in PLANES[plane].registry.mappers:
        decl = getattr(mapper.class_, "__privacy__", None)
        if decl is not None:
            out[str(mapper.local_table.name)] = dict(decl)  # type: ignore[attr-defined]
    return out


def entries() -> list[ColumnEntry]:
    """Every column of every table of both planes with its declaration (None when undeclared)."""
    rows = []
    for plane in PLANES:
        declared = _declared(plane)
        for table in sorted(_metadata(plane).tables.values(), key=lambda t: t.name):
            decl = declared.get(table.name, {})
            rows += [ColumnEntry(plane, table.name, c.name, decl.get(c.name)) for c in table.columns]
    return rows


def problems() -> list[str]:
    """Undeclared columns and declarations of columns that do not exist."""
    out = [f"{e.plane}.{e.table}.{e.column} has no privacy declaration" for e in entries() if e.declaration is None]
    for plane in PLANES:
        tables = _metadata(plane).tables
        for table, decl in _declared(plane).items():
            if table in tables:
                missing = set(decl) - set(tables[table].columns.keys())
                out += [f"{plane}.{table}.{c} is declared but is not a column" for c in sorted(missing)]
    return out


def personal_tables(plane: str = "cell") -> list[str]:
    """Tables of a plane holding at least one personal column: the stores a data-subject request must cover."""
    return sorted({e.table for e in entries() if e.plane == plane and e.personal})


def render() -> dict[str, Any]:
    """The data map and the record of processing activities (Art. 30) built from it."""
    tables: dict[str, dict[str, Any]] = {}
    activities: dict[str, dict[str, Any]] = defaultdict(lambda: {"categories": set(), "tables": set(),
                                                                  "legal_basis": set(), "retention": set()})
    for e in entries():
        t = tables.setdefault(f"{e.plane}.{e.table}", {"plane": e.plane, "table": e.table, "personal": {},
                                                        "not_personal": []})
        if isinstance(e.declaration, PersonalData):
            d = e.declaration
            t["personal"][e.column] = d.to_dict()
            a = activities[d.purpose]
            a["categories"].add(d.category)
            a["tables"].add(f"{e.plane}.{e.table}")
            a["legal_basis"].add(d.legal_basis)
            a["retention"].add(d.retention)
        elif isinstance(e.declaration, NotPersonal):
            t["not_personal"].append(e.column)
    ropa = [{"purpose": purpose, **{k: sorted(v) for k, v in a.items()},
             "data_subjects": "partner staff" if all(x.startswith("global_plane") for x in a["tables"])
             else "end users of the cell", "recipients": RECIPIENTS.get(purpose, "none outside the cell"),
             "transfers": "global plane (partner staff, not region-bound)" if all(
                 x.startswith("global_plane") for x in a["tables"]) else "none: stays in the subject's region cell",
             "security_measures": list(MEASURES)}
            for purpose, a in sorted(activities.items())]
    return {"tables": list(tables.values()), "record_of_processing": ropa, "problems": problems()}
