"""The audit log: an append-only hash chain per cell of DSR steps and reads of personal data by staff."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.privacy.domain import chain_hash
from ecohub.privacy.models import AuditEntry
from ecohub.store import Databases, utcnow

GENESIS = "0" * 64


def entry_fields(e: AuditEntry) -> dict[str, Any]:
    """The fields an entry's hash covers (its own hash excluded, the previous one included)."""
    return {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
            "detail": e.detail, "prev_hash": e.prev_hash}


@dataclass
class VerifyResult:
    """What `audit verify` found in one cell."""

    cell: str
    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The result as `--json` prints it."""
        return {"cell": self.cell, "ok": self.ok, "entries": self.entries, "head": self.head,
                "problems": self.problems}


class AuditLog:
    """Appends to and verifies each cell's chain; the head (seq, hash) is also anchored in a file per cell."""

    def __init__(self, dbs: Databases, anchor_dir: Path) -> None:
        self.dbs = dbs
        self.anchor_dir = anchor_dir
        self._locks = {cell: threading.Lock() for cell in dbs.cells}

    def append(self, cell: str, *, actor: str, action: str, subject: str | None = None,
               detail: dict[str, Any] | None = None) -> str:
        """Append one entry in its own unit of work; → its hash."""
        with self._locks[self.dbs.check_cell(cell)], self.dbs.cell_session(cell) as s:
            entry = self.append_in(s, actor=actor, action=action, subject=subject, detail=detail)
        self._anchor(cell, entry.seq, entry.hash)
        return entry.hash

    @staticmethod
    def append_in(s: Session, *, actor: str, action: str, subject: str | None = None,
                  detail: dict[str, Any] | None = None) -> AuditEntry:
        """Append inside the caller's transaction (a DSR step and its entry commit together)."""
        last = s.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
                         .with_for_update()).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        entry = AuditEntry(seq=seq, at=utcnow().isoformat(), actor=actor, action=action, subject=subject,
                           detail=detail or {}, prev_hash=prev, hash="")
        entry.hash = chain_hash(entry_fields(entry))
        s.add(entry)
        s.flush()
        return entry

    def sync_anchor(self, cell: str) -> None:
        """Anchor the current head of a cell (after entries appended inside another unit of work)."""
        with self.dbs.cell_session(cell) as s:
            last = s.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
        if last is not None:
            self._anchor(cell, last[0], last[1])

    def _anchor_path(self, cell: str) -> Path:
        return self.anchor_dir / f"audit-{cell}.head"

    def _anchor(self, cell: str, seq: int, digest: str) -> None:
        """Remember the newest head outside the database, so removing entries at the tail is detected too."""
        path = self._anchor_path(cell)
        current = self._read_anchor(cell)
        if current is not None and current[0] >= seq:
            return
        self.anchor_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(f"{seq} {digest}\n")
        os.replace(tmp, path)

    def _read_anchor(self, cell: str) -> tuple[int, str] | None:
        path = self._anchor_path(cell)
        if not path.exists():
            return None
        seq, _, digest = path.read_text().strip().partition(" ")
        return int(seq), digest

    def verify(self, cell: str) -> VerifyResult:
        """Recompute every hash and link of a cell's chain; report gaps, edits and a truncated tail."""
        result = VerifyResult(cell=self.dbs.check_cell(cell))
        expected_seq, prev = 1, GENESIS
        with self.dbs.cell_session(cell) as s:
            for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000)):
                result.entries += 1
                if e.seq != expected_seq:
                    result.problems.append(f"entries {expected_seq}..{e.seq - 1} are missing")
                if e.prev_hash != prev:
                    result.problems.append(f"entry {e.seq} does not link to the entry before it")
                if chain_hash(entry_fields(e)) != e.hash:
                    result.problems.append(f"entry {e.seq} was modified (its hash does not match its fields)")
                expected_seq, prev = e.seq + 1, e.hash
        result.head = prev
        anchor = self._read_anchor(cell)
        if anchor is not None:
            if anchor[0] >= expected_seq:
                result.problems.append(f"entries {expected_seq}..{anchor[0]} at the tail were removed "
                                       f"(the anchored head is entry {anchor[0]})")
            elif anchor[0] == expected_seq - 1 and anchor[1] != prev:
                result.problems.append(f"entry {anchor[0]} differs from the anchored head")
        return result

    def entries(self, cell: str, *, subject: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries of a cell (of one subject)."""
        q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
        if subject is not None:
            q = q.where(AuditEntry.subject == subject)
        with self.dbs.cell_session(cell) as s:
            return [{**entry_fields(e), "hash": e.hash} for e in s.scalars(q)]
