"""Pure rules of privacy: data-map declarations, purposes, deadlines, canonical hashing."""

from __future__ import annotations

import calendar
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class PersonalData:
    """A column holding personal data: what it is, why it is kept, on which basis and for how long."""

    category: str
    purpose: str
    legal_basis: str
    retention: str

    def to_dict(self) -> dict[str, str]:
        """The declaration as the data map renders it."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class NotPersonal:
    """A column explicitly declared to hold no personal data, with why."""

    why: str = "no information about an identifiable person"


NOT_PERSONAL = NotPersonal()
Declaration = PersonalData | NotPersonal

# Shorthands for the declarations of the cell plane, reused by several models.
CONTRACT = "Art. 6(1)(b) contract"
USER_ID = PersonalData("identifier (pseudonymous user id)", "account and service delivery", CONTRACT,
                       "until erasure of the account")
DEVICE_ID = PersonalData("identifier (device of a user)", "operating the user's devices", CONTRACT,
                         "until erasure or unbinding")
DEVICE_DATA = PersonalData("device usage data", "operating the user's devices", CONTRACT,
                           "until erasure or unbinding")
SEALED_DEVICE_DATA = PersonalData("device usage data (AES-GCM sealed with the owner's subject key)",
                                  "operating the user's devices", CONTRACT, "until erasure or unbinding")
OWNER = PersonalData("identifier (user whose key seals the row)", "operating the user's devices", CONTRACT,
                     "until erasure or unbinding")
TIMESTAMP = PersonalData("activity time", "operating the user's devices", CONTRACT, "until erasure or unbinding")
FREE_TEXT = PersonalData("free text chosen by the user (may reveal identity)", "organising the user's home", CONTRACT,
                         "until erasure")
SEALED_FREE_TEXT = PersonalData("free text chosen by the user (may reveal identity; sealed with the home owner's key)",
                                "organising the user's home", CONTRACT, "until erasure")
LEGITIMATE = "Art. 6(1)(f) legitimate interest"
EMAIL = PersonalData("contact data (email, sealed with the subject key)", "account and sign-in", CONTRACT,
                     "until erasure")
EMAIL_HASH = PersonalData("identifier (keyed email hash)", "sign-in lookup", CONTRACT, "until erasure")
CREDENTIAL = PersonalData("credential (argon2 hash)", "authentication", CONTRACT, "until erasure")
COUNTRY = PersonalData("country of residence", "region cell (data residency)", CONTRACT, "until erasure")
LANGUAGE = PersonalData("language preference", "showing the console in the user's language", CONTRACT,
                        "until erasure")
PARTNER_CONTACT = PersonalData("business contact (partner staff email)", "partner relationship", LEGITIMATE,
                               "while the partnership lasts")
STAFF = PersonalData("staff identifier (operator/partner token id)", "accountability of changes", LEGITIMATE,
                     "with the record")


def not_personal(*columns: str, why: str = "no information about an identifiable person") -> dict[str, Declaration]:
    """Declare columns of a model non-personal in one line: `__privacy__ = {**not_personal("id", ...), ...}`."""
    decl = NotPersonal(why)
    return dict.fromkeys(columns, decl)


class Purpose(StrEnum):
    """Purposes a user may consent to (and withdraw from)."""

    DEVICE_DIAGNOSTICS_TO_MAKER = "device_diagnostics_to_maker"
    PRODUCT_IMPROVEMENT_ANALYTICS = "product_improvement_analytics"


class DsrKind(StrEnum):
    """Kinds of data-subject request."""

    EXPORT = "export"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"


def add_months(ts: datetime, months: int) -> datetime:
    """The same day `months` calendar months later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    total = ts.month - 1 + months
    year, month = ts.year + total // 12, total % 12 + 1
    day = min(ts.day, calendar.monthrange(year, month)[1])
    return ts.replace(year=year, month=month, day=day)


def canonical(data: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) hashed by the audit chain."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def chain_hash(fields: dict[str, Any]) -> str:
    """sha256 hex over the canonical JSON of an audit entry's fields (including the previous hash)."""
    return hashlib.sha256(canonical(fields)).hexdigest()
