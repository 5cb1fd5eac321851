"""Data-subject requests: export, erasure and rectification over every store of the data map, with deadlines."""

from __future__ import annotations

import json
import secrets
import tempfile
import zipfile
from collections.abc import Callable
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.errors import Conflict, EcohubError, ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.privacy.audit import AuditLog
from ecohub.privacy.crypto import SubjectKeys
from ecohub.privacy.datamap import personal_tables
from ecohub.privacy.domain import DsrKind, add_months
from ecohub.privacy.models import DsrRequest, DsrStep, PartnerAck, PartnerRecipient, SubjectKey
from ecohub.privacy.partner import PartnerAccess
from ecohub.privacy.registry import DataRegistry, ExportContext, StoreHandler, SubjectDirectory
from ecohub.privacy.sealing import PayloadSealer
from ecohub.privacy.stores import KEYS, write_store
from ecohub.store import Databases, aware, utcnow

HANDLED = {"done", "retained", "not_applicable"}
SPOOL_BYTES = 32 * 1024 * 1024


class DsrService:
    """Runs data-subject requests in the subject's cell over the registered stores; each step recorded, audited."""

    def __init__(self, dbs: Databases, audit: AuditLog, keys: SubjectKeys, registry: DataRegistry,
                 partners: PartnerAccess, sealer: PayloadSealer) -> None:
        self.dbs = dbs
        self.audit = audit
        self.keys = keys
        self.registry = registry
        self.partners = partners
        self.sealer = sealer

    @property
    def subjects(self) -> SubjectDirectory:
        """Who the data subjects are (registered by home)."""
        found = self.registry.lookups.subjects
        assert found is not None, "no context registered the subject directory"
        return found

    # --- checks -------------------------------------------------------------------------------------------------

    def _refuse(self, cell: str, actor: str, kind: str, subject: str, err: EcohubError) -> EcohubError:
        self.audit.append(cell, actor=actor, action=f"dsr.{kind}.refused", subject=subject,
                          detail={"code": err.code, "message": err.message})
        return err

    def check_subject(self, cell: str, user_id: str, *, actor: str, kind: str) -> None:
        """The subject exists in `cell`; else refused (audited) as erased, served elsewhere or unknown."""
        self.dbs.check_cell(cell)
        if self.subjects.exists(cell, user_id):
            return
        with self.dbs.cell_session(cell) as s:
            key = s.get(SubjectKey, user_id)
        if key is not None and key.wrapped is None:
            err: EcohubError = (Conflict(f"subject {user_id} was already erased", code=ErrorCode.ALREADY_ERASED)
                                if kind == DsrKind.ERASURE else
                                NotFound(f"subject {user_id} was erased; nothing is left to {kind}",
                                         code=ErrorCode.SUBJECT_ERASED))
            raise self._refuse(cell, actor, kind, user_id, err)
        for other in self.dbs.cells:
            if other != cell and self.subjects.exists(other, user_id):
                raise self._refuse(cell, actor, kind, user_id, Forbidden(
                    f"subject {user_id} is served by region cell {other!r}; send the request there",
                    code=ErrorCode.WRONG_CELL, cell=other))
        raise self._refuse(cell, actor, kind, user_id, NotFound(f"no subject {user_id} in cell {cell!r}",
                                                                code=ErrorCode.UNKNOWN_SUBJECT))

    def verify_identity(self, cell: str, user_id: str, password: str | None, *, actor: str, kind: str) -> None:
        """Export and erasure need the account password again (a stolen session token is not enough)."""
        self.check_subject(cell, user_id, actor=actor, kind=kind)
        if not self.subjects.verify_password(cell, user_id, password):
            raise self._refuse(cell, actor, kind, user_id, Forbidden(
                "confirm this request with your password (X-Password header)", code=ErrorCode.IDENTITY_NOT_VERIFIED))

    # --- requests -----------------------------------------------------------------------------------------------

    def _open(self, s: Session, user_id: str, kind: DsrKind, actor: str) -> DsrRequest:
        now = utcnow()
        req = DsrRequest(id=secrets.token_hex(8), subject_id=user_id, kind=kind, status="open", received_at=now,
                         due_at=add_months(now, 1))
        s.add(req)
        s.flush()
        self.audit.append_in(s, actor=actor, action=f"dsr.{kind}.received", subject=user_id,
                             detail={"request_id": req.id, "due": req.due_at.isoformat()})
        return req

    @staticmethod
    def _step(s: Session, request_id: str, store: str, status: str, detail: dict[str, Any]) -> None:
        row = s.get(DsrStep, (request_id, store))
        if row is None:
            s.add(DsrStep(request_id=request_id, store=store, status=status, detail=detail))
        else:
            row.status, row.detail, row.at = status, detail, utcnow()

    def _stores(self, s: Session, req: DsrRequest,
                handle: Callable[[StoreHandler], tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Run `handle` for every personal store, children first; a store nobody registered is recorded as skipped
        (so the request cannot complete)."""
        report = {}
        for name in self.registry.erase_order(personal_tables()):
            handler = self.registry.handler(name)
            if handler is None:
                self._step(s, req.id, name, "skipped", {"reason": "no handler for this store"})
                continue
            status, detail = handle(handler)
            self._step(s, req.id, name, status, detail)
            report[name] = detail
        return report

    def settle(self, cell: str, request_id: str) -> dict[str, Any]:
        """Fold partner acknowledgements into the steps; complete the request when every store is handled."""
        with self.dbs.cell_session(cell) as s:
            req = s.get(DsrRequest, request_id)
            if req is None:
                raise NotFound(f"no request {request_id} in cell {cell!r}", code=ErrorCode.UNKNOWN_REQUEST)
            for ack in s.scalars(select(PartnerAck).where(PartnerAck.request_id == request_id)):
                if ack.acked_at is not None:
                    self._step(s, request_id, f"partner:{ack.partner_id}", "done",
                               {"acknowledged_at": aware(ack.acked_at).isoformat(), "devices": len(ack.pseudonyms)})
            s.flush()
            steps = s.scalars(select(DsrStep).where(DsrStep.request_id == request_id)).all()
            if req.status == "open" and steps and all(st.status in HANDLED for st in steps):
                req.status, req.completed_at = "complete", utcnow()
                if req.kind == DsrKind.ERASURE:
                    req.receipt = {"request_id": req.id, "subject": req.subject_id, "cell": cell,
                                   "received_at": aware(req.received_at).isoformat(),
                                   "completed_at": req.completed_at.isoformat(),
                                   "stores": {st.store: {"status": st.status, **st.detail} for st in steps}}
                self.audit.append_in(s, actor="system", action=f"dsr.{req.kind}.complete", subject=req.subject_id,
                                     detail={"request_id": req.id})
            out = self._dict(req, steps)
        self.audit.sync_anchor(cell)
        return out

    @staticmethod
    def _dict(req: DsrRequest, steps: Any) -> dict[str, Any]:
        return {"request_id": req.id, "kind": req.kind, "status": req.status, "subject": req.subject_id,
                "received_at": aware(req.received_at).isoformat(), "due": aware(req.due_at).isoformat(),
                "extended_reason": req.extended_reason,
                "completed_at": aware(req.completed_at).isoformat() if req.completed_at else None,
                "steps": {st.store: {"status": st.status, **st.detail} for st in steps}, "receipt": req.receipt}

    def status(self, cell: str, request_id: str) -> dict[str, Any]:
        """A request with its steps and (once complete) its receipt."""
        return self.settle(cell, request_id)

    def list(self, cell: str, *, status: str | None = None) -> list[dict[str, Any]]:
        """Requests of a cell, oldest deadline first."""
        with self.dbs.cell_session(cell) as s:
            q = select(DsrRequest).order_by(DsrRequest.due_at)
            if status:
                q = q.where(DsrRequest.status == status)
            return [self._dict(r, s.scalars(select(DsrStep).where(DsrStep.request_id == r.id)).all())
                    for r in s.scalars(q)]

    def extend(self, cell: str, request_id: str, *, reason: str, actor: str) -> dict[str, Any]:
        """Extend the deadline by two further months (Art. 12(3)); once, with a reason."""
        if not reason.strip():
            raise InvalidInput("an extension needs a reason", code=ErrorCode.REASON_REQUIRED)
        with self.dbs.cell_session(cell) as s:
            req = s.get(DsrRequest, request_id)
            if req is None:
                raise NotFound(f"no request {request_id} in cell {cell!r}", code=ErrorCode.UNKNOWN_REQUEST)
            if req.extended_reason is not None:
                raise Conflict("the deadline was already extended", code=ErrorCode.ALREADY_EXTENDED)
            if req.status != "open":
                raise Conflict(f"the request is {req.status}", code=ErrorCode.REQUEST_CLOSED)
            req.extended_reason = reason.strip()
            req.due_at = add_months(aware(req.received_at), 3)
            self.audit.append_in(s, actor=actor, action=f"dsr.{req.kind}.extended", subject=req.subject_id,
                                 detail={"request_id": req.id, "due": req.due_at.isoformat(), "reason": reason})
        return self.settle(cell, request_id)

    # --- the three kinds ----------------------------------------------------------------------------------------

    def erase(self, cell: str, user_id: str, *, actor: str) -> dict[str, Any]:
        """Destroy the subject key, release the devices, delete the rows of every store, notify recipients, rotate
        the cell key."""
        self.check_subject(cell, user_id, actor=actor, kind=DsrKind.ERASURE)
        with self.dbs.cell_session(cell) as s:
            req = self._open(s, user_id, DsrKind.ERASURE, actor)
            destroyed = self.keys.destroy(s, user_id)
            self._step(s, req.id, KEYS, "done", {"key_destroyed": destroyed})
            self.audit.append_in(s, actor=actor, action="dsr.erasure.key_destroyed", subject=user_id,
                                 detail={"request_id": req.id})
            sc = self.subjects.scope(s, user_id)
        # the devices go first: unbound and re-keyed (their old secrets fail, their sessions drop), so nothing
        # they send after this moment is stored as this user's
        assert self.registry.lookups.release is not None  # checked at build
        released = self.registry.lookups.release(cell, list(sc.devices))
        with self.dbs.cell_session(cell) as s:
            self._step(s, req.id, "devices_released", "done", {"devices": released})
        with self.dbs.cell_session(cell) as s:
            recipients = list(s.scalars(select(PartnerRecipient.partner_id).where(PartnerRecipient.user_id == user_id)))
            makers = self.partners.makers(s, list(sc.devices))
            for pid in recipients:
                pseudonyms = [self.partners.pseudonym(pid, d) for d, owner in makers.items() if owner == pid]
                s.add(PartnerAck(request_id=req.id, partner_id=pid, pseudonyms=pseudonyms))
                self._step(s, req.id, f"partner:{pid}", "pending", {"devices": len(pseudonyms)})

            def handle(h: StoreHandler) -> tuple[str, dict[str, Any]]:
                if h.name == KEYS:
                    return "done", {"key_destroyed": destroyed}
                if h.retained is not None:
                    return "retained", {"reason": h.retained}
                return "done", h.erase_rows(s, sc)

            report = self._stores(s, req, handle)
            self.audit.append_in(s, actor=actor, action="dsr.erasure.rows_deleted", subject=user_id,
                                 detail={"request_id": req.id, "stores": report, "partners_notified": recipients})
        self.sealer.forget(cell, user_id)
        rotation = self.keys.rotate_cell(cell)
        with self.dbs.cell_session(cell) as s:
            self._step(s, req.id, "cell_key_rotation", "done", rotation)
            self.audit.append_in(s, actor="system", action="dsr.erasure.cell_key_rotated", subject=user_id,
                                 detail={"request_id": req.id, **rotation})
        return self.settle(cell, req.id)

    def export(self, cell: str, user_id: str, *, actor: str) -> tuple[dict[str, Any], IO[bytes]]:
        """A zip of JSON and CSV per store (raw telemetry included), built in a spooled temp file."""
        self.check_subject(cell, user_id, actor=actor, kind=DsrKind.EXPORT)
        with self.dbs.cell_session(cell) as s:
            req = self._open(s, user_id, DsrKind.EXPORT, actor)
            rid = req.id
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (handed to the response)
        counts: dict[str, Any] = {}
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
                self.dbs.cell_session(cell) as s:
            sc = self.subjects.scope(s, user_id)
            key = self.keys.get(s, cell, user_id) if s.get(SubjectKey, user_id) else None
            ctx = ExportContext(s, cell, user_id, key, self.sealer.opener(s, cell))

            def handle(h: StoreHandler) -> tuple[str, dict[str, Any]]:
                if not h.exported:
                    return "not_applicable", {"reason": "key material is never exported"}
                n = write_store(zf, s, h, sc, ctx)
                counts[h.name] = n
                return "done", {"rows": n}

            row = s.get(DsrRequest, rid)
            assert row is not None
            self._stores(s, row, handle)
            zf.writestr("manifest.json", json.dumps({"request_id": rid, "subject": user_id, "cell": cell,
                                                     "generated_at": utcnow().isoformat(), "rows": counts,
                                                     "formats": ["json", "csv"]}, indent=2))
            self.audit.append_in(s, actor=actor, action="dsr.export.delivered", subject=user_id,
                                 detail={"request_id": rid, "rows": counts})
        out.seek(0)
        return self.settle(cell, rid), out

    def rectify_email(self, cell: str, user_id: str, email: str, *, actor: str) -> dict[str, Any]:
        """Replace the subject's email (keyed hash and sealed address); other stores hold no email."""
        self.check_subject(cell, user_id, actor=actor, kind=DsrKind.RECTIFICATION)
        if self.subjects.locate_email(email) is not None:
            raise self._refuse(cell, actor, DsrKind.RECTIFICATION, user_id,
                               Conflict("an account with this email already exists", code=ErrorCode.EMAIL_TAKEN))
        with self.dbs.cell_session(cell) as s:
            req = self._open(s, user_id, DsrKind.RECTIFICATION, actor)

            def handle(h: StoreHandler) -> tuple[str, dict[str, Any]]:
                if h.rectify_email is not None:
                    return "done", {"rectified": h.rectify_email(s, cell, user_id, email)}
                return "not_applicable", {"reason": "holds no email"}

            self._stores(s, req, handle)
            self.audit.append_in(s, actor=actor, action="dsr.rectification.applied", subject=user_id,
                                 detail={"request_id": req.id, "fields": ["email"]})
            rid = req.id
        return self.settle(cell, rid)
