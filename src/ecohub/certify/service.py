"""Use cases of certification: run the suite, sign and keep reports, verify them, answer the listing gate."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import and_, or_, select

from ecohub.bus import EventBus
from ecohub.certify import keys
from ecohub.certify.domain import MARKET_PROFILES, MarketTable, Status, evidence_required, market_verdict
from ecohub.certify.events import ReportRecorded
from ecohub.certify.evidence import EvidenceService, PartnerOf
from ecohub.certify.models import CertificationReport
from ecohub.certify.report import Verdict, sign, verify
from ecohub.certify.runner import Progress, RunOptions, run_suite
from ecohub.certify.target import HubUnderTest
from ecohub.errors import Conflict, ErrorCode, InvalidInput, NotFound
from ecohub.store import Databases

MARKET_TABLE_TTL_S = 5.0
SpecHashOf = Callable[[str], str | None]  # model -> the product's current spec hash, None for an unknown product
SpecVersionOf = Callable[[str], int | None]  # model -> the product's current spec version, None when unknown


class CertificationService:
    """Signed certification reports per product; `passing_markets` is what the ecosystem's gate asks."""

    def __init__(self, dbs: Databases, *, data_dir: Path, market_profiles: Callable[[], MarketTable] | None = None,
                 spec_hash_of: SpecHashOf | None = None, bus: EventBus | None = None,
                 partner_of: PartnerOf | None = None, spec_version_of: SpecVersionOf | None = None) -> None:
        self.dbs = dbs
        self.data_dir = data_dir
        self._market_profiles = market_profiles
        self._spec_hash_of = spec_hash_of
        self._spec_version_of = spec_version_of
        self.bus = bus or EventBus()
        self._table: tuple[float, MarketTable] | None = None
        self.evidence = EvidenceService(dbs, self.bus, data_dir=data_dir, market_table=self.market_table,
                                        partner_of=partner_of or (lambda _model: None))

    def market_table(self) -> MarketTable:
        """The current market → requirement ids table (the ecosystem's, else the reference markets); read at most
        every few seconds (the gate asks it for every listing it judges)."""
        now = time.monotonic()
        if self._table is None or now - self._table[0] > MARKET_TABLE_TTL_S:
            table = self._market_profiles() if self._market_profiles is not None else {}
            self._table = (now, table or MARKET_PROFILES)
        return self._table[1]

    def signing_key(self) -> Ed25519PrivateKey:
        """The brand key of this data dir (created on first use)."""
        return keys.brand_key(self.data_dir)

    def public_key_pem(self) -> str:
        """The brand's public key, for partners and listing partners to verify reports."""
        return keys.public_pem(self.signing_key().public_key())

    async def run(self, hub: HubUnderTest, options: RunOptions, *, on_progress: Progress | None = None,
                  store: bool = True) -> dict[str, Any]:
        """Run the suite against a running hub and a real device process; sign the report with the brand key and
        keep it."""
        if options.market_table is None:
            options.market_table = self.market_table()
        report = sign(await run_suite(hub, options, on_progress=on_progress), self.signing_key())
        if store:
            self.record(report)
        return report

    def verify(self, doc: Any, *, public_key: Ed25519PublicKey | None = None) -> Verdict:
        """Verify a report against the brand key (or a given one) and, if the product is known, its current spec."""
        trusted = public_key or keys.brand_public_key(self.data_dir)
        current = None
        if isinstance(doc, dict) and isinstance(doc.get("model"), str) and self._spec_hash_of is not None:
            current = self._spec_hash_of(doc["model"])
        return verify(doc, trusted=trusted, current_spec_hash=current)

    def record(self, doc: dict[str, Any]) -> None:
        """Keep a report signed by the brand key (a partner's self-signed run is refused)."""
        verdict = verify(doc, trusted=keys.brand_public_key(self.data_dir))
        if not verdict.signature_ok or not verdict.trusted:
            raise InvalidInput("only reports signed by the brand key are kept: " + "; ".join(verdict.problems),
                               code=ErrorCode.UNTRUSTED_REPORT)
        passed = [m["market"] for m in doc.get("markets", []) if m.get("passed")]
        with self.dbs.global_session() as s:
            if s.get(CertificationReport, doc["report_id"]) is not None:
                raise Conflict(f"report {doc['report_id']} is already recorded", code=ErrorCode.DUPLICATE_REPORT)
            s.add(CertificationReport(
                report_id=doc["report_id"], model=doc["model"], spec_hash=doc["spec_hash"],
                passed=bool(doc["passed"]), markets_passed=passed, key_id=doc["signature"]["key_id"],
                issued_at=datetime.fromisoformat(doc["issued_at"]),
                expires_at=datetime.fromisoformat(doc["expires_at"]), document=doc))
        self.bus.publish([ReportRecorded(doc["model"], doc["spec_hash"], doc["report_id"])])

    def list(self, model: str | None = None, *, limit: int = 100,
             before: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
        """Report summaries, newest first (ties by report id); `before` (issued_at, report_id) starts after a row."""
        q = (select(CertificationReport)
             .order_by(CertificationReport.issued_at.desc(), CertificationReport.report_id.desc()).limit(limit))
        if model:
            q = q.where(CertificationReport.model == model)
        if before is not None:  # keyset: a report recorded during a walk never shifts the pages still to come
            at, rid = before
            q = q.where(or_(CertificationReport.issued_at < at,
                            and_(CertificationReport.issued_at == at, CertificationReport.report_id < rid)))
        with self.dbs.global_session() as s:
            return [{"report_id": r.report_id, "model": r.model, "spec_hash": r.spec_hash, "passed": r.passed,
                     "markets_passed": list(r.markets_passed), "issued_at": r.issued_at.isoformat(),
                     "expires_at": r.expires_at.isoformat()} for r in s.scalars(q)]

    def get(self, report_id: str) -> dict[str, Any]:
        """One stored report document."""
        with self.dbs.global_session() as s:
            row = s.get(CertificationReport, report_id)
            if row is None:
                raise NotFound(f"no certification report {report_id}", code=ErrorCode.UNKNOWN_REPORT)
            return dict(row.document)

    def declarations(self) -> dict[str, dict[str, Any]]:
        """Per model, what its newest recorded report declares: {"declaration": {…} | None, "report_id",
        "expires_at"} (a model without any report is absent)."""
        latest: dict[str, dict[str, Any]] = {}
        with self.dbs.global_session() as s:
            for r in s.scalars(select(CertificationReport).order_by(CertificationReport.issued_at)):
                latest[r.model] = {"declaration": (r.document or {}).get("declaration"), "report_id": r.report_id,
                                   "expires_at": r.expires_at}
        return latest

    def passing_markets(self, model: str, spec_hash: str) -> frozenset[str]:
        """Markets that open for this exact spec: a valid report passes every required check *and* every regime of
        the market's profile has valid evidence."""
        return frozenset(m for m, why in self.market_gate(model, spec_hash).items() if why is None)

    def market_gate(self, model: str, spec_hash: str,
                    markets: builtins.list[str] | None = None) -> dict[str, str | None]:
        """Per market (every known one unless named): None when it opens, else why not, in words for a listing."""
        table = self.market_table()
        codes = [m.upper() for m in markets] if markets is not None else list(table)
        statuses = self._valid_statuses(model, spec_hash)
        evidence = self.evidence.state([model]).get(model, {})
        out: dict[str, str | None] = {}
        for m in codes:
            profiles = table.get(m)
            if profiles is None:
                out[m] = f"unknown market {m}"
                continue
            reasons = []
            if not statuses:
                reasons.append(self._no_report_reason(model, spec_hash))
            else:
                verdicts = [market_verdict(st, m, profiles) for st in statuses]
                if not any(v["passed"] for v in verdicts):
                    fewest: builtins.list[str] = min((v["failing"] for v in verdicts), key=len)
                    reasons.append("required checks not passed: " + ", ".join(fewest))
            missing = [f"{r} ({evidence[(m, r)]})" if evidence.get((m, r), "") else r
                       for r in evidence_required(profiles) if evidence.get((m, r), "") is not None]
            if missing:
                reasons.append("no valid evidence for " + ", ".join(missing))
            out[m] = "; ".join(reasons) or None
        return out

    def _valid_statuses(self, model: str, spec_hash: str) -> builtins.list[dict[str, Status]]:
        """The check outcomes of every valid (brand-signed, unexpired) report for exactly this spec."""
        trusted = keys.brand_public_key(self.data_dir)
        if trusted is None:
            return []
        now = datetime.now(UTC)
        with self.dbs.global_session() as s:
            docs = [dict(r.document) for r in s.scalars(
                select(CertificationReport).where(CertificationReport.model == model,
                                                  CertificationReport.spec_hash == spec_hash))]
        # bound to the spec version too: a spec that returns to an earlier document is a new version to certify
        version = self._spec_version_of(model) if self._spec_version_of is not None else None
        return [{c["id"]: Status(c["status"]) for c in doc.get("checks", [])} for doc in docs
                if verify(doc, trusted=trusted, current_spec_hash=spec_hash, now=now).valid
                and (version is None or doc.get("spec_version") in (None, version))]

    def _no_report_reason(self, model: str, spec_hash: str) -> str:
        with self.dbs.global_session() as s:
            older = s.scalar(select(CertificationReport.spec_hash).where(
                CertificationReport.model == model, CertificationReport.spec_hash != spec_hash).limit(1))
        if older is not None:
            return f"no valid certification report for the current spec {spec_hash[:12]}… (recertify: the reports " \
                   "are for an earlier spec)"
        return f"no valid certification report for the current spec {spec_hash[:12]}…"
