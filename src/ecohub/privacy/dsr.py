"""Data-subject requests: export, erasure and rectification over every store of the data map, with deadlines."""

from __future__ import annotations

import json
import secrets
import tempfile
import zipfile
from collections.abc import Callable
from typing import IO, Any

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.connect.models import Device
from ecohub.errors import Conflict, EcohubError, Forbidden, InvalidInput, NotFound
from ecohub.home.accounts import PASSWORDS, AccountService
from ecohub.home.models import User
from ecohub.privacy.audit import AuditLog
from ecohub.privacy.crypto import SEALED, SealedEmailVault, SubjectKeys, open_sealed
from ecohub.privacy.datamap import personal_tables
from ecohub.privacy.domain import DsrKind, add_months
from ecohub.privacy.models import DsrRequest, DsrStep, PartnerAck, PartnerRecipient, SubjectKey
from ecohub.privacy.partner import PartnerAccess
from ecohub.privacy.sealing import PayloadSealer
from ecohub.privacy.stores import ERASE_ORDER, KEYS, RETAINED, SELECTORS, erase_store, scope_of, write_store
from ecohub.store import Databases, aware, utcnow

HANDLED = {"done", "retained", "not_applicable"}
SPOOL_BYTES = 32 * 1024 * 1024


class DsrService:
    """Runs data-subject requests in the subject's cell; each step is recorded and audited."""

    def __init__(self, dbs: Databases, audit: AuditLog, keys: SubjectKeys, accounts: AccountService,
                 emails: SealedEmailVault, partners: PartnerAccess, sealer: PayloadSealer) -> None:
        self.dbs = dbs
        self.audit = audit
        self.keys = keys
        self.accounts = accounts
        self.emails = emails
        self.partners = partners
        self.sealer = sealer

    # --- checks -------------------------------------------------------------------------------------------------

    def _refuse(self, cell: str, actor: str, kind: str, subject: str, err: EcohubError) -> EcohubError:
        self.audit.append(cell, actor=actor, action=f"dsr.{kind}.refused", subject=subject,
                          detail={"code": err.code, "message": err.message})
        return err

    def check_subject(self, cell: str, user_id: str, *, actor: str, kind: str) -> None:
        """The subject exists in `cell`; else refused (audited) as erased, served elsewhere or unknown."""
        self.dbs.check_cell(cell)
        with self.dbs.cell_session(cell) as s:
            user = s.get(User, user_id)
            key = s.get(SubjectKey, user_id)
        if user is not None:
            return
        if key is not None and key.wrapped is None:
            err: EcohubError = (Conflict(f"subject {user_id} was already erased", code="already_erased")
                                if kind == DsrKind.ERASURE else
                                NotFound(f"subject {user_id} was erased; nothing is left to {kind}",
                                         code="subject_erased"))
            raise self._refuse(cell, actor, kind, user_id, err)
        for other in self.dbs.cells:
            if other != cell and self.accounts.exists(other, user_id):
                raise self._refuse(cell, actor, kind, user_id, Forbidden(
                    f"subject {user_id} is served by region cell {other!r}; send the request there",
                    code="wrong_cell", cell=other))
        raise self._refuse(cell, actor, kind, user_id, NotFound(f"no subject {user_id} in cell {cell!r}",
                                                                code="unknown_subject"))

    def verify_identity(self, cell: str, user_id: str, password: str | None, *, actor: str, kind: str) -> None:
        """Export and erasure need the account password again (a stolen session token is not enough)."""
        self.check_subject(cell, user_id, actor=actor, kind=kind)
        with self.dbs.cell_session(cell) as s:
            user = s.get(User, user_id)
            stored = user.password_hash if user else ""
        try:
            if not password:
                raise VerificationError("no password")
            PASSWORDS.verify(stored, password)
        except (VerificationError, InvalidHashError) as err:
            raise self._refuse(cell, actor, kind, user_id, Forbidden(
                "confirm this request with your password (X-Password header)",
                code="identity_not_verified")) from err

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

    def _stores(self, s: Session, req: DsrRequest, handle: Any) -> dict[str, Any]:
        """Run `handle(name)` for every personal store; a store without a selector is recorded as skipped."""
        report = {}
        names = sorted(personal_tables(), key=lambda n: (ERASE_ORDER.index(n) if n in ERASE_ORDER else 99, n))
        for name in names:
            if name not in SELECTORS:
                self._step(s, req.id, name, "skipped", {"reason": "no handler for this store"})
                continue
            status, detail = handle(name)
            self._step(s, req.id, name, status, detail)
            report[name] = detail
        return report

    def settle(self, cell: str, request_id: str) -> dict[str, Any]:
        """Fold partner acknowledgements into the steps; complete the request when every store is handled."""
        with self.dbs.cell_session(cell) as s:
            req = s.get(DsrRequest, request_id)
            if req is None:
                raise NotFound(f"no request {request_id} in cell {cell!r}", code="unknown_request")
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
            raise InvalidInput("an extension needs a reason", code="reason_required")
        with self.dbs.cell_session(cell) as s:
            req = s.get(DsrRequest, request_id)
            if req is None:
                raise NotFound(f"no request {request_id} in cell {cell!r}", code="unknown_request")
            if req.extended_reason is not None:
                raise Conflict("the deadline was already extended", code="already_extended")
            if req.status != "open":
                raise Conflict(f"the request is {req.status}", code="request_closed")
            req.extended_reason = reason.strip()
            req.due_at = add_months(aware(req.received_at), 3)
            self.audit.append_in(s, actor=actor, action=f"dsr.{req.kind}.extended", subject=req.subject_id,
                                 detail={"request_id": req.id, "due": req.due_at.isoformat(), "reason": reason})
        return self.settle(cell, request_id)

    # --- the three kinds ----------------------------------------------------------------------------------------

    def erase(self, cell: str, user_id: str, *, actor: str) -> dict[str, Any]:
        """Destroy the subject key, delete the rows of every store, notify recipients, rotate the cell key."""
        self.check_subject(cell, user_id, actor=actor, kind=DsrKind.ERASURE)
        with self.dbs.cell_session(cell) as s:
            req = self._open(s, user_id, DsrKind.ERASURE, actor)
            destroyed = self.keys.destroy(s, user_id)
            self._step(s, req.id, KEYS, "done", {"key_destroyed": destroyed})
            self.audit.append_in(s, actor=actor, action="dsr.erasure.key_destroyed", subject=user_id,
                                 detail={"request_id": req.id})
        with self.dbs.cell_session(cell) as s:
            sc = scope_of(s, user_id)
            recipients = list(s.scalars(select(PartnerRecipient.partner_id).where(PartnerRecipient.user_id == user_id)))
            makers = dict(s.execute(select(Device.did, Device.partner_id)
                                    .where(Device.did.in_(list(sc.devices)))).all())
            for pid in recipients:
                pseudonyms = [self.partners.pseudonym(pid, d) for d, owner in makers.items() if owner == pid]
                s.add(PartnerAck(request_id=req.id, partner_id=pid, pseudonyms=pseudonyms))
                self._step(s, req.id, f"partner:{pid}", "pending", {"devices": len(pseudonyms)})

            def handle(name: str) -> tuple[str, dict[str, Any]]:
                if name == KEYS:
                    return "done", {"key_destroyed": destroyed}
                if name in RETAINED:
                    return "retained", {"reason": RETAINED[name]}
                return "done", erase_store(s, name, sc)

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
            sc = scope_of(s, user_id)
            key = self.keys.get(s, cell, user_id) if s.get(SubjectKey, user_id) else None
            opener = self.sealer.opener(s, cell)

            def users(row: dict[str, Any]) -> dict[str, Any]:
                if key is not None and row["email"].startswith(SEALED):
                    row["email"] = open_sealed(key, user_id, row["email"])
                row["password_hash"] = "(credential: not exported)"
                return row

            def named(table: str, id_column: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
                def open_name(row: dict[str, Any]) -> dict[str, Any]:  # the user's homes: sealed with their key
                    row["name"] = opener.name(user_id, table, row[id_column], row["name"])
                    return row
                return open_name

            transforms = {"users": users, "homes": named("homes", "id"), "rooms": named("rooms", "id"),
                          "bindings": named("bindings", "did")}

            def handle(name: str) -> tuple[str, dict[str, Any]]:
                if name == KEYS:
                    return "not_applicable", {"reason": "key material is never exported"}
                n = write_store(zf, s, name, sc, transforms.get(name), opener)
                counts[name] = n
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
        if self.accounts.locate(email) is not None:
            raise self._refuse(cell, actor, DsrKind.RECTIFICATION, user_id,
                               Conflict("an account with this email already exists", code="email_taken"))
        with self.dbs.cell_session(cell) as s:
            req = self._open(s, user_id, DsrKind.RECTIFICATION, actor)
            user = s.get(User, user_id)
            assert user is not None
            user.email, user.email_hash = self.emails.seal(s, user_id, email, cell), self.emails.lookup_hash(email)

            def handle(name: str) -> tuple[str, dict[str, Any]]:
                if name == "users":
                    return "done", {"rectified": ["email", "email_hash"]}
                return "not_applicable", {"reason": "holds no email"}

            self._stores(s, req, handle)
            self.audit.append_in(s, actor=actor, action="dsr.rectification.applied", subject=user_id,
                                 detail={"request_id": req.id, "fields": ["email"]})
            rid = req.id
        return self.settle(cell, rid)
