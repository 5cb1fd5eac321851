"""Tables of the privacy context (cell plane): audit chain, subject keys, consents, DSRs, partner disclosures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecohub.privacy.domain import CONTRACT, USER_ID, PersonalData, not_personal
from ecohub.store.db import BigId, CellBase, JsonType, utcnow

ACCOUNTABILITY = PersonalData("identifier and activity record", "accountability (Art. 5(2)) and security",
                              "Art. 6(1)(c) legal obligation", "6 years, kept after erasure (Art. 17(3)(b))")
CONSENT = PersonalData("consent record", "proof of consent (Art. 7(1))", "Art. 6(1)(c) legal obligation",
                       "until erasure, then as long as claims can be brought")


class AuditEntry(CellBase):
    """One append-only entry of a cell's hash chain: who did what to whose data, and the hash linking it."""

    __tablename__ = "audit_log"
    __privacy__ = {**not_personal("seq", "action", "prev_hash", "hash"),
                   "at": ACCOUNTABILITY, "actor": ACCOUNTABILITY, "subject": ACCOUNTABILITY, "detail": ACCOUNTABILITY}

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))  # ISO text exactly as hashed
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[Any] = mapped_column(JsonType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class SubjectKey(CellBase):
    """A subject's 256-bit data key wrapped by the cell key; destroyed first on erasure (crypto-shredding)."""

    __tablename__ = "subject_keys"
    __privacy__ = {**not_personal("kek_version", "created_at", "destroyed_at"), "subject_id": USER_ID,
                   "wrapped": PersonalData("key material", "crypto-shredding of personal fields", CONTRACT,
                                           "destroyed first on erasure")}

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Consent(CellBase):
    """One entry of the consent ledger: a user gave or withdrew consent to a purpose under a text version."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_user_purpose", "user_id", "purpose", "id"),)
    __privacy__ = {**not_personal("id", "purpose", "text_version"), "user_id": CONSENT, "given": CONSENT,
                   "at": CONSENT}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    given: Mapped[bool] = mapped_column(Boolean)
    text_version: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DsrRequest(CellBase):
    """A data-subject request (export, erasure, rectification) with its statutory deadline and receipt."""

    __tablename__ = "dsr_requests"
    __privacy__ = {**not_personal("id", "kind", "status", "due_at", "extended_reason", "completed_at"),
                   "subject_id": ACCOUNTABILITY, "received_at": ACCOUNTABILITY, "receipt": ACCOUNTABILITY}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    extended_reason: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    receipt: Mapped[Any | None] = mapped_column(JsonType)


class DsrStep(CellBase):
    """What one store of the data map reported for a request: done, retained (with basis) or skipped."""

    __tablename__ = "dsr_steps"
    __privacy__ = not_personal("request_id", "store", "status", "detail", "at",
                               why="counts and store names about a request, no personal values")

    request_id: Mapped[str] = mapped_column(ForeignKey("dsr_requests.id", ondelete="CASCADE"), primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[Any] = mapped_column(JsonType)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PartnerRecipient(CellBase):
    """A partner that received (pseudonymous) data of a user, so erasure can fan out to it."""

    __tablename__ = "partner_recipients"
    __privacy__ = {**not_personal("partner_id", "purpose"), "user_id": USER_ID, "first_at": ACCOUNTABILITY,
                   "last_at": ACCOUNTABILITY}

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PartnerAck(CellBase):
    """An erasure notice sent to a partner and its acknowledgement (the request stays open until acked)."""

    __tablename__ = "partner_acks"
    __privacy__ = {**not_personal("request_id", "partner_id", "notified_at", "acked_at"),
                   "pseudonyms": PersonalData("pseudonymous device ids", "erasure fan-out to recipients",
                                              "Art. 6(1)(c) legal obligation (Art. 19)", "with the request record")}

    request_id: Mapped[str] = mapped_column(ForeignKey("dsr_requests.id", ondelete="CASCADE"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pseudonyms: Mapped[Any] = mapped_column(JsonType)
    notified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

