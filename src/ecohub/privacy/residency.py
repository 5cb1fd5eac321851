"""Residency report: prove no personal identifier of a cell's subjects appears in another cell or the global plane."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import JSON, LargeBinary, String, Table, Text, select
from sqlalchemy.orm import Session

from ecohub.privacy.crypto import SubjectKeys
from ecohub.privacy.registry import Lookups, Needle
from ecohub.store import Databases
from ecohub.store.db import plane_metadata as metadata_for

MAX_FINDINGS = 200


def _text_columns(t: Table) -> list[str]:
    return [c.name for c in t.columns if isinstance(c.type, (String, Text, JSON, LargeBinary))]


def _as_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex()
    return v if isinstance(v, str) else str(v)


class ResidencyScanner:
    """Collects every cell's subject identifiers, then scans every other store for them, value by value.

    The identifiers and the per-cell checks come from the contexts that own them (registered look-ups); the scan
    itself reads every table of the store's metadata, personal or not, since a leak can land anywhere.
    """

    def __init__(self, dbs: Databases, keys: SubjectKeys, lookups: Lookups) -> None:
        self.dbs = dbs
        self.keys = keys
        self.lookups = lookups

    def _needles(self, cell: str, s: Session) -> dict[str, Needle]:
        found: dict[str, Needle] = {}
        for source in self.lookups.needles:
            found.update(source(s, cell, self.keys))
        return found

    def _stores(self) -> Iterator[tuple[str, str, Any]]:
        yield "global_plane", "global_plane", self.dbs.global_session
        for cell in self.dbs.cells:
            yield cell, "cell", lambda c=cell: self.dbs.cell_session(c)

    def report(self) -> dict[str, Any]:
        """{ok, subjects per cell, stores and rows scanned, findings: where a foreign identifier was found}."""
        needles: dict[str, Needle] = {}
        subjects: dict[str, dict[str, int]] = {}
        findings: list[dict[str, Any]] = []
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                mine = self._needles(cell, s)
                for check in self.lookups.residency_findings:
                    findings += check(s, cell)
            needles.update(mine)
            subjects[cell] = {"users": sum(n.kind == "user id" for n in mine.values()),
                              "bound_devices": sum(n.kind == "bound device id" for n in mine.values())}
        rows = 0
        scanned: list[str] = []
        for store, plane, session in self._stores():
            foreign = {k: n for k, n in needles.items() if n.cell != store}
            if not foreign:
                continue
            pattern = re.compile("|".join(re.escape(k) for k in sorted(foreign, key=len, reverse=True)), re.I)
            with session() as s:
                for t in metadata_for(plane).sorted_tables:
                    cols = _text_columns(t)
                    if not cols:
                        continue
                    scanned.append(f"{store}.{t.name}")
                    q = select(*(t.c[c] for c in cols)).execution_options(yield_per=5000)
                    for row in s.execute(q):
                        rows += 1
                        for col, value in zip(cols, row, strict=True):
                            if value is None:
                                continue
                            m = pattern.search(_as_text(value))
                            if m and len(findings) < MAX_FINDINGS:
                                n = foreign[m.group(0).lower()] if m.group(0).lower() in foreign \
                                    else foreign[m.group(0)]
                                findings.append({"store": store, "table": t.name, "column": col,
                                                 "subject_cell": n.cell, "kind": n.kind, "subject": n.subject})
        return {"ok": not findings, "subjects": subjects, "stores_scanned": len(scanned), "rows_scanned": rows,
                "needles": len(needles), "findings": findings}
