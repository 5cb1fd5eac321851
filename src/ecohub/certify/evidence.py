"""Certification evidence: the certificates and lab reports a market's regimes need, per product and market.

The file is kept under the data dir by its SHA-256 (`evidence/ab/abcd…`), so the same PDF recorded twice is stored
once and a record can always be checked against its bytes. A partner may submit evidence for its own products; it
counts only once the brand (an operator) accepted it. Operators' own additions count at once. Only operators accept or
revoke. Evidence expires on its `valid_until` date."""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ecohub.auth import Principal, Role
from ecohub.bus import EventBus
from ecohub.certify.domain import (
    BRAND_REQUIREMENT,
    MAX_EVIDENCE_BYTES,
    EvidenceStatus,
    MarketTable,
    check_evidence_text,
    check_validity,
    evidence_problem,
    profiles_of,
)
from ecohub.certify.events import EvidenceChanged
from ecohub.certify.models import CertificationEvidence
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from ecohub.store import Databases

PartnerOf = Callable[[str], str | None]  # model -> its partner (None: the brand's); NotFound for an unknown product
EVIDENCE_DIR = "evidence"

# (market, regime) -> why no piece of evidence counts for it (None: one does)
EvidenceState = dict[tuple[str, str], str | None]


def today() -> date:
    """The UTC date evidence validity is judged on."""
    return datetime.now(UTC).date()


def _base_name(file_name: str | None) -> str:
    """What a download of the file is called: the last part of the name a client sent, under either separator;
    "" for a name that is only a directory ("..", "a/.")."""
    name = (file_name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "" if name in (".", "..") else name


def evidence_dict(row: CertificationEvidence, on: date | None = None) -> dict[str, Any]:
    """One piece of evidence as services return it, with whether it counts today and why not."""
    problem = evidence_problem(row.status, row.valid_from, row.valid_until, on or today())
    return {"id": row.id, "model": row.model, "market": row.market, "regime": row.regime, "issuer": row.issuer,
            "number": row.number, "scope": row.scope, "valid_from": row.valid_from.isoformat(),
            "valid_until": row.valid_until.isoformat(), "status": row.status, "reason": row.reason,
            "file": {"name": row.file_name, "sha256": row.file_sha256, "size": row.file_size},
            "valid": problem is None, "problem": problem, "added_by": row.added_by, "decided_by": row.decided_by,
            "created_at": row.created_at.isoformat()}


class EvidenceService:
    """Record, list, accept and revoke evidence; tell the gate which regimes of which markets are proven."""

    def __init__(self, dbs: Databases, bus: EventBus, *, data_dir: Path, market_table: Callable[[], MarketTable],
                 partner_of: PartnerOf) -> None:
        self.dbs = dbs
        self.bus = bus
        self.root = data_dir / EVIDENCE_DIR
        self._market_table = market_table
        self._partner_of = partner_of

    def _check_caller(self, caller: Principal | None, model: str, *, decide: bool = False) -> None:
        """Operators (and the CLI on the data dir, caller None) may do anything; a partner only add and read its own
        products' evidence; nobody else anything."""
        owner = self._partner_of(model)  # NotFound for an unknown product, for everyone
        if caller is None or caller.role == Role.OPERATOR:
            return
        if caller.role != Role.PARTNER or decide:
            raise Forbidden("only the brand (an operator) accepts or revokes certification evidence" if decide
                            else "certification evidence is for operators and the product's partner",
                            code=ErrorCode.FORBIDDEN)
        if owner != caller.partner_id:
            raise Forbidden("partners may act only on their own products and devices", code=ErrorCode.NOT_YOUR_PARTNER)

    def _store(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self.root / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(content)
            tmp.replace(path)  # atomic: a reader never sees half a file
        return digest

    def add(self, model: str, *, market: str, regime: str, issuer: str, number: str, valid_until: date | str,
            file_name: str, content: bytes, valid_from: date | str | None = None, scope: str = "",
            caller: Principal | None = None, actor: str = "cli") -> dict[str, Any]:
        """Record a certificate or lab report for one regime of a market's profile (the file is required)."""
        self._check_caller(caller, model)
        market = (market or "").upper()
        profiles = profiles_of(market, self._market_table())
        regime = (regime or "").upper()
        regimes = [p for p in profiles if p != BRAND_REQUIREMENT]
        if regime not in regimes:
            raise InvalidInput(f"{market}'s profile has no regime {regime!r}; it needs evidence for: "
                               f"{', '.join(regimes) or 'nothing'}", code=ErrorCode.UNKNOWN_REGIME)
        issuer = check_evidence_text(issuer, field="an issuer")
        number = check_evidence_text(number, field="a certificate or report number")
        scope = check_evidence_text(scope, field="scope", required=False)
        name = check_evidence_text(_base_name(file_name), field="a file name")
        start, until = check_validity(valid_from, valid_until, today())
        if not content:
            raise InvalidInput("the evidence file is empty", code=ErrorCode.INVALID_EVIDENCE)
        if len(content) > MAX_EVIDENCE_BYTES:
            raise PayloadTooLarge(f"the evidence file has {len(content)} bytes; at most {MAX_EVIDENCE_BYTES} are kept",
                                  code=ErrorCode.EVIDENCE_TOO_LARGE)
        digest = self._store(content)
        operator = caller is None or caller.role == Role.OPERATOR
        status = EvidenceStatus.ACCEPTED if operator else EvidenceStatus.PENDING
        who = caller.actor if caller is not None else actor
        with self.dbs.global_session() as s:
            row = CertificationEvidence(model=model, market=market, regime=regime, issuer=issuer, number=number,
                                        scope=scope, valid_from=start, valid_until=until, file_sha256=digest,
                                        file_name=name, file_size=len(content), status=status, reason="",
                                        added_by=who, decided_by=who if operator else None)
            s.add(row)
            s.flush()
            out = evidence_dict(row)
        self.bus.publish([EvidenceChanged(model, market, regime, out["id"], status)])
        return out

    def list(self, model: str, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """A product's evidence, newest first, each with whether it counts today."""
        self._check_caller(caller, model)
        on = today()
        with self.dbs.global_session() as s:
            rows = s.scalars(select(CertificationEvidence).where(CertificationEvidence.model == model)
                             .order_by(CertificationEvidence.id.desc()))
            return [evidence_dict(r, on) for r in rows]

    def _row(self, s: Any, evidence_id: int, model: str | None) -> CertificationEvidence:
        row = s.get(CertificationEvidence, evidence_id)
        if row is None or (model is not None and row.model != model):
            raise NotFound(f"no evidence {evidence_id}" + (f" for {model}" if model else ""),
                           code=ErrorCode.UNKNOWN_EVIDENCE)
        return row  # type: ignore[no-any-return]

    def get(self, evidence_id: int, *, model: str | None = None, caller: Principal | None = None) -> dict[str, Any]:
        """One piece of evidence."""
        with self.dbs.global_session() as s:
            row = self._row(s, evidence_id, model)
            out = evidence_dict(row)
        self._check_caller(caller, out["model"])
        return out

    def file(self, evidence_id: int, *, model: str | None = None,
             caller: Principal | None = None) -> tuple[str, Path]:
        """(file name, path) of the evidence's stored file."""
        out = self.get(evidence_id, model=model, caller=caller)
        path = self.root / out["file"]["sha256"][:2] / out["file"]["sha256"]
        if not path.exists():
            raise NotFound(f"the file of evidence {evidence_id} is missing from the data dir",
                           code=ErrorCode.UNKNOWN_EVIDENCE)
        return out["file"]["name"], path

    def _decide(self, evidence_id: int, status: EvidenceStatus, *, model: str | None, caller: Principal | None,
                actor: str, reason: str = "") -> dict[str, Any]:
        with self.dbs.global_session() as s:
            row = self._row(s, evidence_id, model)
            self._check_caller(caller, row.model, decide=True)
            if row.status == EvidenceStatus.REVOKED:
                raise Conflict(f"evidence {evidence_id} was revoked ({row.reason}); record a new one",
                               code=ErrorCode.EVIDENCE_REVOKED)
            row.status = status
            row.decided_by = caller.actor if caller is not None else actor
            if reason:
                row.reason = reason
            s.flush()
            out = evidence_dict(row)
        self.bus.publish([EvidenceChanged(out["model"], out["market"], out["regime"], out["id"], status)])
        return out

    def accept(self, evidence_id: int, *, model: str | None = None, caller: Principal | None = None,
               actor: str = "cli") -> dict[str, Any]:
        """The brand accepts a partner's submission: from now on it counts (while valid)."""
        return self._decide(evidence_id, EvidenceStatus.ACCEPTED, model=model, caller=caller, actor=actor)

    def revoke(self, evidence_id: int, *, reason: str, model: str | None = None, caller: Principal | None = None,
               actor: str = "cli") -> dict[str, Any]:
        """The brand withdraws a piece of evidence (forged, withdrawn by its issuer, wrong product): it never counts
        again, and listings that relied on it are suspended."""
        why = check_evidence_text(reason, field="a reason")
        return self._decide(evidence_id, EvidenceStatus.REVOKED, model=model, caller=caller, actor=actor,
                            reason=why)

    def state(self, models: builtins.list[str] | None = None, on: date | None = None) -> dict[str, EvidenceState]:
        """Per model: (market, regime) → None when some piece of evidence counts on that day, else why none does."""
        on = on or today()
        q = select(CertificationEvidence)
        if models is not None:
            q = q.where(CertificationEvidence.model.in_(models))
        out: dict[str, EvidenceState] = {}
        with self.dbs.global_session() as s:
            for row in s.scalars(q.order_by(CertificationEvidence.id)):
                key = (row.market, row.regime)
                per = out.setdefault(row.model, {})
                problem = evidence_problem(row.status, row.valid_from, row.valid_until, on)
                if per.get(key, "") is not None:  # keep the first one that counts, else the newest problem
                    per[key] = None if problem is None else f"{row.number}: {problem}"
        return out
