"""Use cases of the security audit: gather the facts, run the checks, keep findings idempotent, decide, alert."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role
from ecohub.bus import EventBus
from ecohub.connect.events import DeviceConnectAttempted
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.privacy.audit import AuditLog
from ecohub.region.domain import cell_of_did
from ecohub.security.checks import BY_ID, CHECKS
from ecohub.security.domain import (
    ACTIVE,
    Check,
    DeviceFacts,
    Facts,
    FindingStatus,
    Hit,
    ProductFacts,
    Severity,
    Thresholds,
)
from ecohub.security.events import FindingOpened, FindingResolved
from ecohub.security.models import ConnectRecord, Finding, FirmwareSeen, VulnerableFirmware
from ecohub.security.notify import WebhookNotifier
from ecohub.store import Databases, now_ms
from ecohub.store.upsert import upsert
from ecohub.twin.service import TwinService

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000
RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
IN_FIELD = ("certification", "approved", "launched", "discontinued")  # stages whose devices may exist


def _operator(caller: Principal | None) -> None:
    if caller is not None and caller.role != Role.OPERATOR:
        raise Forbidden("the security audit is for the operator", code=ErrorCode.WRONG_ROLE)


def finding_dict(cell: str, f: Finding) -> dict[str, Any]:
    """A finding as the API and `--json` render it (its id names its cell: `eu-12`)."""
    check = BY_ID.get(f.check_id)
    return {"id": f"{cell}-{f.id}", "kind": f.check_id, "severity": f.severity, "status": f.status,
            "subject_kind": f.subject_kind, "subject": f.subject,
            "description": check.description if check else f.check_id, "detail": dict(f.detail or {}),
            "first_ts": f.first_ms, "last_ts": f.last_ms, "resolved_ts": f.resolved_ms, "reason": f.reason,
            "decided_by": f.decided_by, "decided_ts": f.decided_ms, "cell": cell}


class SecurityService:
    """The fleet security audit: checks as data (`security.checks.CHECKS`), findings per cell, operator only."""

    def __init__(self, dbs: Databases, *, devices: DeviceService, products: ProductService, twin: TwinService,
                 declarations: Callable[[], dict[str, dict[str, Any]]], audit_log: AuditLog, bus: EventBus,
                 thresholds: Thresholds, default_cell: str, notifier: WebhookNotifier,
                 updates: Callable[[str, list[str]], dict[str, int]] = lambda cell, dids: {},
                 checks: Sequence[Check] = CHECKS) -> None:
        self.dbs = dbs
        self.devices = devices
        self.products = products
        self.twin = twin
        self.declarations = declarations
        self.audit_log = audit_log
        self.bus = bus
        self.thresholds = thresholds
        self.default_cell = default_cell
        self.notifier = notifier
        self.updates = updates  # (cell, dids) → did → when an OTA update last completed for it (ms)
        self.checks = tuple(checks)

    def _cell(self, did: str) -> str:
        try:
            cell = cell_of_did(did)
        except Exception:
            return self.default_cell
        return cell if cell in self.dbs.cells else self.default_cell

    # --- what the auth callout saw -------------------------------------------------------------------------------

    def record_connects(self, attempts: Iterable[DeviceConnectAttempted]) -> int:
        """Count CONNECT decisions per (device, source address, hour, outcome) in the device's cell; → rows."""
        counts: dict[str, dict[tuple[str, str, int, bool], list[int]]] = defaultdict(dict)
        for a in attempts:
            key = (a.did, a.host[:64], a.ts - a.ts % HOUR_MS, a.allowed)
            slot = counts[self._cell(a.did)].setdefault(key, [0, 0])
            slot[0] += 1
            slot[1] = max(slot[1], a.ts)
        t = ConnectRecord.__table__
        for cell, rows in counts.items():
            with self.dbs.cell_session(cell) as s:
                upsert(s, t, [{"did": d, "host": h, "hour_ms": hour, "allowed": ok, "attempts": n, "last_ms": last}
                              for (d, h, hour, ok), (n, last) in rows.items()],
                       keys=["did", "host", "hour_ms", "allowed"],
                       update={"attempts": lambda ex: t.c.attempts + ex.attempts, "last_ms": lambda ex: ex.last_ms})
        return sum(len(r) for r in counts.values())

    def prune(self, *, before_ms: int) -> int:
        """Delete connect records older than `before_ms` (their retention); → rows deleted."""
        n = 0
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                n += s.execute(delete(ConnectRecord).where(ConnectRecord.last_ms < before_ms)).rowcount or 0  # type: ignore[attr-defined]
        return n

    # --- the audit -----------------------------------------------------------------------------------------------

    def gather(self, now: int | None = None) -> Facts:
        """The facts every check reads, in a few queries per cell."""
        now = now or now_ms()
        t = self.thresholds
        facts = Facts(now_ms=now, today=datetime.fromtimestamp(now / 1000, UTC).date(), thresholds=t)
        declared = self.declarations()
        facts.devices = []
        per_model: dict[str, int] = defaultdict(int)
        for cell in self.dbs.cells:
            infos = [d for d in self.devices.list(cell=cell, limit=10**9) if d.status == "active"]
            for d in infos:
                per_model[d.model] += 1
            dids = [d.did for d in infos]
            # one query per cell for every version (not a twin read per device, which opens every property)
            firmware = {d: (str(v) if v not in (None, "") else None)
                        for d, v in self.twin.firmware_versions(cell, dids).items()}
            seen = self._track_firmware(cell, firmware, now)
            updated = self.updates(cell, dids) if dids else {}
            facts.devices += [DeviceFacts(d.did, cell, d.model, firmware[d.did], seen.get(d.did), updated.get(d.did))
                              for d in infos]
            facts.message_counts.update(self.devices.message_counts(cell, since_ms=now - int(t.rate_window_s * 1000)))
            with self.dbs.cell_session(cell) as s:
                facts.auth_failures.update(_failures(s, now - int(t.auth_window_s * 1000)))
                facts.source_addresses.update(_sources(s, now - int(t.source_window_s * 1000)))
        for p in self.products.list(limit=10**9):
            if p.stage not in IN_FIELD and p.model not in per_model:
                continue
            decl = declared.get(p.model) or {}
            facts.products[p.model] = ProductFacts(p.model, p.stage, per_model.get(p.model, 0),
                                                   decl.get("declaration"), decl.get("expires_at"))
        with self.dbs.cell_session(self.default_cell) as s:
            facts.vulnerable = {(v.model, v.version): v.reason for v in s.scalars(select(VulnerableFirmware))}
        return facts

    def _track_firmware(self, cell: str, firmware: dict[str, str | None], now: int) -> dict[str, tuple[str, int]]:
        """Remember the first version each device reported and when its version last changed; → did → (first
        version, first seen) for devices still on it."""
        out: dict[str, tuple[str, int]] = {}
        with self.dbs.cell_session(cell) as s:
            known = {r.did: r for r in s.scalars(select(FirmwareSeen).where(
                FirmwareSeen.did.in_([d for d, v in firmware.items() if v])))} if any(firmware.values()) else {}
            for did, version in firmware.items():
                if version is None:
                    continue
                row = known.get(did)
                if row is None:
                    s.add(FirmwareSeen(did=did, first_version=version, first_ms=now, version=version))
                    out[did] = (version, now)
                    continue
                if row.version != version:
                    row.version, row.changed_ms = version, now
                if row.changed_ms is None:
                    out[did] = (row.first_version, row.first_ms)
        return out

    def audit(self, *, now: int | None = None) -> dict[str, Any]:
        """Run every check; open new findings, refresh the ones still true, resolve the ones whose condition is
        gone (re-running changes nothing else); alert on new critical ones. → a summary of what changed."""
        now = now or now_ms()
        facts = self.gather(now)
        events: list[Any] = []
        summary = {"opened": 0, "refreshed": 0, "resolved": 0, "checks": len(self.checks)}
        for check in self.checks:
            by_cell: dict[str, dict[str, Hit]] = defaultdict(dict)
            for hit in check.run(facts):
                by_cell[hit.cell or (self._cell(hit.subject) if check.subject_kind == "device"
                                     else self.default_cell)][hit.subject] = hit
            for cell in self.dbs.cells:
                with self.dbs.cell_session(cell) as s:
                    self._reconcile(s, cell, check, by_cell.get(cell, {}), now, summary, events)
        summary["notified"] = self.notify_critical()
        summary["open"] = self.count(status=FindingStatus.OPEN)
        self.bus.publish(events)
        log.info("security audit: %s", summary)
        return summary

    @staticmethod
    def _reconcile(s: Session, cell: str, check: Check, hits: dict[str, Hit], now: int, summary: dict[str, int],
                   events: list[Any]) -> None:
        active = {f.subject: f for f in s.scalars(select(Finding).where(
            Finding.check_id == check.id, Finding.status.in_([str(a) for a in ACTIVE])))}
        for subject, hit in hits.items():
            row = active.get(subject)
            if row is not None:
                row.last_ms, row.detail = now, hit.detail
                summary["refreshed"] += 1
                continue
            row = Finding(check_id=check.id, subject_kind=check.subject_kind, subject=subject,
                          severity=str(check.severity), status=FindingStatus.OPEN, detail=hit.detail, first_ms=now,
                          last_ms=now, reason="", notified=False)
            s.add(row)
            s.flush()
            summary["opened"] += 1
            events.append(FindingOpened(f"{cell}-{row.id}", check.id, str(check.severity), subject, hit.detail))
        for subject, row in active.items():
            if subject not in hits and row.status != FindingStatus.SUPPRESSED:
                row.status, row.resolved_ms = FindingStatus.RESOLVED, now
                summary["resolved"] += 1
                events.append(FindingResolved(f"{cell}-{row.id}", check.id, subject))

    def notify_critical(self) -> int:
        """Send each open critical finding not yet delivered to the webhook; one that fails is tried again on the
        next audit. → how many were delivered."""
        if not self.notifier.url:
            return 0
        sent = 0
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                rows = list(s.scalars(select(Finding).where(Finding.status == FindingStatus.OPEN,
                                                            Finding.severity == Severity.CRITICAL,
                                                            Finding.notified.is_(False))))
                for row in rows:
                    if self.notifier.send(finding_dict(cell, row)):
                        row.notified = True
                        sent += 1
        return sent

    # --- reading and deciding ------------------------------------------------------------------------------------

    def count(self, *, status: str | None = None, severity: str | None = None) -> int:
        """How many findings (optionally of one status and severity) there are, over every cell."""
        n = 0
        for cell in self.dbs.cells:
            q = select(func.count()).select_from(Finding)
            if status:
                q = q.where(Finding.status == status)
            if severity:
                q = q.where(Finding.severity == severity)
            with self.dbs.cell_session(cell) as s:
                n += int(s.scalar(q) or 0)
        return n

    def open_critical(self, caller: Principal | None = None) -> int:
        """Open critical findings (the console's banner); 0 for anyone but the operator."""
        if caller is not None and caller.role != Role.OPERATOR:
            return 0
        return self.count(status=FindingStatus.OPEN, severity=Severity.CRITICAL)

    def findings(self, *, caller: Principal | None = None, severity: str | None = None, kind: str | None = None,
                 status: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Findings, most severe and most recent first, filtered by severity, kind (check id) and status."""
        _operator(caller)
        for value, allowed, what in ((severity, [str(x) for x in Severity], "severity"),
                                     (status, [str(x) for x in FindingStatus], "status"),
                                     (kind, list(BY_ID), "kind")):
            if value is not None and value not in allowed:
                raise InvalidInput(f"{what} must be one of {', '.join(allowed)}; got {value!r}",
                                   code=ErrorCode.INVALID_INPUT)
        out: list[dict[str, Any]] = []
        for cell in self.dbs.cells:
            q = select(Finding).order_by(Finding.last_ms.desc()).limit(offset + limit)
            if severity:
                q = q.where(Finding.severity == severity)
            if kind:
                q = q.where(Finding.check_id == kind)
            if status:
                q = q.where(Finding.status == status)
            with self.dbs.cell_session(cell) as s:
                out += [finding_dict(cell, f) for f in s.scalars(q)]
        out.sort(key=lambda f: (RANK.get(Severity(f["severity"]), 9), -f["last_ts"], f["id"]))
        return out[offset:offset + limit]

    def get(self, finding_id: str, *, caller: Principal | None = None) -> dict[str, Any]:
        """One finding by id (`eu-12`)."""
        _operator(caller)
        cell, number = self._parse(finding_id)
        with self.dbs.cell_session(cell) as s:
            return finding_dict(cell, self._row(s, finding_id, number))

    def _parse(self, finding_id: str) -> tuple[str, int]:
        cell, _, number = finding_id.rpartition("-")
        if cell not in self.dbs.cells or not number.isdigit() or len(number) > 18:
            raise NotFound(f"no finding {finding_id}", code=ErrorCode.UNKNOWN_FINDING)
        return cell, int(number)

    @staticmethod
    def _row(s: Session, finding_id: str, number: int) -> Finding:
        row = s.get(Finding, number)
        if row is None:
            raise NotFound(f"no finding {finding_id}", code=ErrorCode.UNKNOWN_FINDING)
        return row

    def decide(self, finding_id: str, action: str, *, reason: str, caller: Principal | None,
               actor: str = "cli") -> dict[str, Any]:
        """Acknowledge (seen, being handled) or suppress (accepted risk: not raised again for this subject) a
        finding, with a reason; the decision goes to the cell's hash-chained audit log in the same transaction."""
        _operator(caller)
        if action not in ("acknowledge", "suppress"):
            raise InvalidInput("action must be acknowledge or suppress", code=ErrorCode.INVALID_INPUT)
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput(f"a reason is required to {action} a finding", code=ErrorCode.REASON_REQUIRED)
        who = caller.actor if caller is not None else actor
        cell, number = self._parse(finding_id)
        with self.dbs.cell_session(cell) as s:
            row = self._row(s, finding_id, number)
            allowed = (FindingStatus.OPEN,) if action == "acknowledge" else (FindingStatus.OPEN,
                                                                             FindingStatus.ACKNOWLEDGED)
            if row.status not in allowed:
                raise Conflict(f"finding {finding_id} is {row.status}: it cannot be {action}d",
                               code=ErrorCode.FINDING_CLOSED)
            row.status = FindingStatus.ACKNOWLEDGED if action == "acknowledge" else FindingStatus.SUPPRESSED
            row.reason, row.decided_by, row.decided_ms = reason[:2000], who, now_ms()
            self.audit_log.append_in(s, actor=who, action=f"security.finding.{row.status}", subject=row.subject,
                                     detail={"finding": finding_id, "kind": row.check_id, "reason": reason[:2000]})
            out = finding_dict(cell, row)
        self.audit_log.sync_anchor(cell)
        return out

    def mark_vulnerable(self, model: str, version: str, *, reason: str, caller: Principal | None,
                        actor: str = "cli") -> dict[str, Any]:
        """Mark a firmware version of a model vulnerable (audited); devices reporting it become critical findings
        at the next audit."""
        _operator(caller)
        self.products.get(model)  # an unknown model is a 404
        version, reason = (version or "").strip(), (reason or "").strip()
        if not version or len(version) > 64:
            raise InvalidInput("version must be 1 to 64 characters", code=ErrorCode.INVALID_INPUT)
        if not reason:
            raise InvalidInput("a reason is required (e.g. the CVE)", code=ErrorCode.REASON_REQUIRED)
        who = caller.actor if caller is not None else actor
        cell = self.default_cell
        row = {"model": model, "version": version, "reason": reason[:2000], "marked_by": who, "marked_ms": now_ms()}
        with self.dbs.cell_session(cell) as s:
            t = VulnerableFirmware.__table__
            upsert(s, t, [row], keys=["model", "version"],
                   update={c: (lambda ex, c=c: getattr(ex, c)) for c in ("reason", "marked_by", "marked_ms")})
            self.audit_log.append_in(s, actor=who, action="security.firmware.marked_vulnerable", subject=model,
                                     detail={"version": version, "reason": reason[:2000]})
        self.audit_log.sync_anchor(cell)
        return row

    def vulnerable_firmware(self, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Every firmware version marked vulnerable."""
        _operator(caller)
        with self.dbs.cell_session(self.default_cell) as s:
            return [{"model": v.model, "version": v.version, "reason": v.reason, "marked_by": v.marked_by,
                     "marked_ts": v.marked_ms}
                    for v in s.scalars(select(VulnerableFirmware).order_by(VulnerableFirmware.model,
                                                                           VulnerableFirmware.version))]


def _failures(s: Session, since_ms: int) -> dict[str, tuple[int, int]]:
    rows = s.execute(select(ConnectRecord.did, func.sum(ConnectRecord.attempts),
                            func.count(ConnectRecord.host.distinct()))
                     .where(ConnectRecord.allowed.is_(False), ConnectRecord.last_ms >= since_ms)
                     .group_by(ConnectRecord.did))
    return {did: (int(n or 0), int(h or 0)) for did, n, h in rows}


def _sources(s: Session, since_ms: int) -> dict[str, int]:
    rows = s.execute(select(ConnectRecord.did, func.count(ConnectRecord.host.distinct()))
                     .where(ConnectRecord.allowed.is_(True), ConnectRecord.last_ms >= since_ms)
                     .group_by(ConnectRecord.did))
    return {did: int(n) for did, n in rows}
