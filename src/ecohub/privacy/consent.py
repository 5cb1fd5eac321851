"""The consent ledger: per user and purpose, given or withdrawn with the time and the text version shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.errors import ErrorCode, InvalidInput
from ecohub.privacy.audit import AuditLog
from ecohub.privacy.domain import Purpose
from ecohub.privacy.models import Consent
from ecohub.store import Databases


def parse_purpose(text: str) -> Purpose:
    """A purpose by name; InvalidInput naming the known ones."""
    try:
        return Purpose(text)
    except ValueError as err:
        raise InvalidInput(f"unknown purpose {text!r} (one of {', '.join(Purpose)})",
                           code=ErrorCode.UNKNOWN_PURPOSE) from err


def consenting(s: Session, user_ids: Iterable[str], purpose: Purpose) -> set[str]:
    """Users whose latest ledger entry for `purpose` gives consent (read at each use: withdrawal acts at once)."""
    ids = list(set(user_ids))
    if not ids:
        return set()
    latest: dict[str, bool] = {}
    q = select(Consent.user_id, Consent.given).where(Consent.purpose == purpose, Consent.user_id.in_(ids))
    for user_id, given in s.execute(q.order_by(Consent.id)):
        latest[user_id] = bool(given)
    return {u for u, given in latest.items() if given}


def latest(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each purpose with the last decision of a ledger (oldest first); never asked → given False, version None."""
    out: dict[str, dict[str, Any]] = {p: {"purpose": p.value, "given": False, "text_version": None, "at": None}
                                      for p in Purpose}
    for entry in history:
        out[entry["purpose"]] = entry
    return out


class ConsentService:
    """Appends to the ledger and answers what a user currently consents to."""

    def __init__(self, dbs: Databases, audit: AuditLog) -> None:
        self.dbs = dbs
        self.audit = audit

    def record(self, cell: str, user_id: str, *, purpose: str, given: bool, text_version: str) -> dict[str, Any]:
        """Give or withdraw consent; the previous entries stay (the ledger is append-only)."""
        p = parse_purpose(purpose)
        version = text_version.strip()
        if not 1 <= len(version) <= 32:
            raise InvalidInput("text_version must be 1 to 32 characters", code=ErrorCode.INVALID_TEXT_VERSION)
        with self.dbs.cell_session(cell) as s:
            s.add(Consent(user_id=user_id, purpose=p, given=given, text_version=version))
        return self.current(cell, user_id)[p]

    def current(self, cell: str, user_id: str) -> dict[str, dict[str, Any]]:
        """Each purpose with the user's latest decision (never asked → given False, version None)."""
        return latest(self.history(cell, user_id))

    def ledger(self, cell: str, user_id: str) -> dict[str, Any]:
        """The current decision per purpose and the full ledger, from one read."""
        history = self.history(cell, user_id)
        return {"current": list(latest(history).values()), "history": history}

    def history(self, cell: str, user_id: str) -> list[dict[str, Any]]:
        """Every ledger entry of a user, oldest first."""
        with self.dbs.cell_session(cell) as s:
            return [{"purpose": c.purpose, "given": bool(c.given), "text_version": c.text_version,
                     "at": c.at.isoformat()}
                    for c in s.scalars(select(Consent).where(Consent.user_id == user_id).order_by(Consent.id))]
