"""Pure rules of certification: the check catalogue, market profiles, the product declaration and verdicts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from ecohub.errors import ErrorCode, InvalidInput
from ecohub.spec import CompiledSpec

SUITE_VERSION = "1.0"
DEFAULT_MAX_RATE_HZ = 10.0  # messages per second per unit, when the declaration does not say
REPORT_VALIDITY_DAYS = 365


class Status(StrEnum):
    """Outcome of one check; `na` = nothing in the spec to test, `skip` = could not be run (counts as not passed)."""

    PASS = "pass"
    FAIL = "fail"
    NA = "na"
    SKIP = "skip"

    @property
    def ok(self) -> bool:
        """True when the check does not block a market."""
        return self in (Status.PASS, Status.NA)


@dataclass(frozen=True, slots=True)
class CheckDef:
    """One check of the suite: a stable id, what it proves and the clauses it is drawn from."""

    id: str
    title: str
    category: str
    refs: tuple[str, ...] = ()


CHECKS: tuple[CheckDef, ...] = (
    CheckDef("connect.auth", "the unit connects and authenticates with its own credentials", "connect"),
    CheckDef("connect.retained_state", "online state is published retained on the unit's state topic", "connect"),
    CheckDef("properties.reported", "every readable/notify property is reported with a valid value", "properties"),
    CheckDef("properties.get", "get_properties answers every readable property with a valid value", "properties"),
    CheckDef("properties.set_roundtrip", "every writable property round-trips: set → code 0 → "
             "properties_changed → twin", "properties"),
    CheckDef("writes.refused_out_of_range", "out-of-range writes are refused with an error code", "writes"),
    CheckDef("writes.refused_wrong_type", "wrong-type writes are refused with an error code", "writes"),
    CheckDef("writes.refused_not_writable", "writes to read-only properties are refused with an error code",
             "writes"),
    CheckDef("actions.answer", "every action answers code 0 with its declared out arguments", "actions"),
    CheckDef("ota.firmware_version", "the online state names the firmware version the unit runs", "ota",
             ("EN 303 645 5.3-16",)),
    CheckDef("ota.refuses_bad_signature", "ota_update of an image whose signatures do not verify is refused with "
             "code -4023, reported in ota_progress, and not installed", "ota",
             ("EN 303 645 5.3-9", "EN 18031-1 SUM-2")),
    CheckDef("events.arguments", "every declared event is seen, carrying exactly its declared arguments", "events"),
    CheckDef("state.offline_will", "killing the device process marks it offline via the retained will", "state"),
    CheckDef("state.back_online", "after a restart the unit is online again and reports", "state"),
    CheckDef("connect.reconnect", "after a broker restart (or, attached to an external hub, a session take-over) "
             "the unit reconnects, resubscribes and answers", "connect"),
    CheckDef("limits.message_rate", "messages per second stay within the declared limit", "limits"),
    CheckDef("limits.payload_size", "payloads stay within the declared and the hub's size limit", "limits"),
    CheckDef("security.unique_credentials", "units have unique credentials; a unit's secret does not open "
             "another unit", "security", ("EN 303 645 5.1-1", "EN 18031-1 ACM/AUM", "PSTI 1")),
    CheckDef("security.broker_isolation", "the broker refuses a unit publishing to or subscribing on another "
             "unit's topics", "security", ("EN 303 645 5.5", "EN 18031-1 ACM-1")),
    CheckDef("security.no_foreign_attempts", "the device never tries another device's topics", "security",
             ("EN 303 645 5.6", "EN 18031-1 NMM")),
    CheckDef("declaration.vulnerability_contact", "a vulnerability disclosure contact is declared", "declaration",
             ("EN 303 645 5.2-1", "PSTI 2")),
    CheckDef("declaration.support_period", "a security support period is declared and not over", "declaration",
             ("EN 303 645 5.3-13", "PSTI 3")),
    CheckDef("declaration.secure_update", "a secure (signed) update mechanism is declared", "declaration",
             ("EN 303 645 5.3", "EN 18031-1 SUM")),
    CheckDef("declaration.privacy", "the privacy declaration is present and consistent with the spec",
             "declaration", ("EN 303 645 6", "EN 18031-2")),
)
CHECK_BY_ID: dict[str, CheckDef] = {c.id: c for c in CHECKS}

_CONFORMANCE = frozenset(c.id for c in CHECKS if c.category not in ("security", "declaration"))

BRAND_REQUIREMENT = "ECOHUB-CONFORMANCE"  # the brand's own requirement, in every market's profile

# Requirement id (as in a market's certification profile) → the checks of this suite it needs. Only what a cloud
# can test: the radio, electrical and lab parts of each regime (and ids not listed here) are "not covered".
PROFILES: dict[str, frozenset[str]] = {
    BRAND_REQUIREMENT: _CONFORMANCE | {"security.unique_credentials", "security.broker_isolation"},
    "EN-18031": frozenset({"security.unique_credentials", "security.broker_isolation", "security.no_foreign_attempts",
                           "declaration.secure_update",
                           "ota.refuses_bad_signature", "declaration.privacy", "declaration.vulnerability_contact"}),
    "CE-RED": frozenset({"security.unique_credentials", "security.no_foreign_attempts", "declaration.secure_update",
                         "declaration.privacy"}),
    "UKCA": frozenset({"security.unique_credentials", "security.no_foreign_attempts", "declaration.secure_update"}),
    "PSTI": frozenset({"security.unique_credentials", "declaration.vulnerability_contact",
                       "declaration.support_period"}),
    "FCC": frozenset(),  # radio rules only: the cloud part is the baseline
    "CCC": frozenset({"declaration.privacy"}),
    "BIS": frozenset({"security.unique_credentials"}),
}

MarketTable = dict[str, list[str]]  # ISO 3166 market code → requirement ids (the ecosystem's market table)

# Used until/unless the ecosystem's market table is available; a few reference markets.
MARKET_PROFILES: MarketTable = {
    "DE": [BRAND_REQUIREMENT, "CE-RED", "EN-18031", "EU-ROHS"],
    "GB": [BRAND_REQUIREMENT, "UKCA", "PSTI"],
    "US": [BRAND_REQUIREMENT, "FCC"],
    "CN": [BRAND_REQUIREMENT, "CCC", "SRRC", "CTA"],
    "IN": [BRAND_REQUIREMENT, "BIS", "WPC"],
}


def profiles_of(market: str, table: MarketTable | None = None) -> list[str]:
    """The requirement ids of a market; InvalidInput for unknown markets."""
    table = table or MARKET_PROFILES
    profiles = table.get(market.upper())
    if profiles is None:
        raise InvalidInput(f"unknown market {market!r}; known: {', '.join(sorted(table))}",
                           code=ErrorCode.UNKNOWN_MARKET)
    return list(profiles)


def required_checks(profiles: list[str]) -> frozenset[str]:
    """The union of the checks the given requirement ids need (ids outside the suite need none)."""
    return frozenset().union(*(PROFILES.get(p, frozenset()) for p in profiles))


def evidence_required(profiles: list[str]) -> list[str]:
    """The regimes of a profile that need a certificate or lab report: every one but the brand's own conformance.

    The suite tests only what a cloud can see of a regime (its security baseline); the radio, electrical, chemical
    and lab parts of CE-RED, CCC, TELEC, WPC, RoHS, FCC, … are proven by their documents, never by the wire."""
    return [p for p in profiles if p != BRAND_REQUIREMENT]


def market_verdict(statuses: dict[str, Status], market: str, profiles: list[str]) -> dict[str, Any]:
    """The suite's part of one market: every required check must be pass or na (`passed`). The market opens only
    when the evidence of `evidence_required` is valid too (the gate, not the report, decides that)."""
    required = sorted(required_checks(profiles))
    failing = [c for c in required if not statuses.get(c, Status.SKIP).ok]
    return {"market": market.upper(), "profiles": list(profiles), "required": required, "failing": failing,
            "not_covered": [p for p in profiles if p not in PROFILES],
            "evidence_required": evidence_required(profiles), "passed": not failing}


def market_verdicts(statuses: dict[str, Status], markets: list[str],
                    table: MarketTable | None = None) -> list[dict[str, Any]]:
    """Pass/fail per market."""
    return [market_verdict(statuses, m, profiles_of(m, table)) for m in markets]


# URN names of properties that are personal data wherever they appear; a privacy declaration must list them.
PERSONAL_HINTS = frozenset({
    "location", "latitude", "longitude", "gps", "face", "voice", "fingerprint", "heart-rate", "user-id",
    "contact", "phone-number", "email", "camera", "video", "audio", "weight", "body-fat", "blood-pressure",
})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Declaration:
    """What the partner declares about the product (not testable on the wire); parsed leniently, judged by checks."""

    raw: dict[str, Any] = field(default_factory=dict)
    present: bool = False

    @classmethod
    def from_document(cls, doc: Any) -> Declaration:
        """From a parsed JSON object (None = no declaration given)."""
        if doc is None:
            return cls()
        if not isinstance(doc, dict):
            raise InvalidInput("the product declaration must be a JSON object", code=ErrorCode.INVALID_DECLARATION)
        return cls(raw=doc, present=True)

    def limit(self, name: str, default: float) -> float:
        """A declared numeric limit from `limits`, else the default."""
        value = (self.raw.get("limits") or {}).get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 \
            else default


def _missing(decl: Declaration, what: str) -> str:
    if not decl.present:
        return "no product declaration was given (--declaration FILE)"
    return f"the product declaration has no {what}"


def check_vulnerability_contact(decl: Declaration) -> tuple[bool, str]:
    """`vulnerability_disclosure.contact` is an e-mail address or an https URL."""
    contact = (decl.raw.get("vulnerability_disclosure") or {}).get("contact")
    if not contact:
        return False, _missing(decl, "vulnerability_disclosure.contact")
    if not (EMAIL_RE.match(str(contact)) or str(contact).startswith("https://")):
        return False, f"vulnerability contact {contact!r} is neither an e-mail address nor an https URL"
    return True, f"vulnerability reports go to {contact}"


def check_support_period(decl: Declaration, today: date | None = None) -> tuple[bool, str]:
    """`support_period.end` is an ISO date that has not passed."""
    end = (decl.raw.get("support_period") or {}).get("end")
    if not end:
        return False, _missing(decl, "support_period.end")
    try:
        end_date = date.fromisoformat(str(end))
    except ValueError:
        return False, f"support_period.end {end!r} is not an ISO date (YYYY-MM-DD)"
    if end_date <= (today or datetime.now(UTC).date()):
        return False, f"the declared support period ended on {end_date}"
    return True, f"security updates until {end_date}"


def check_secure_update(decl: Declaration) -> tuple[bool, str]:
    """`secure_update.mechanism` is named and updates are `signed`."""
    upd = decl.raw.get("secure_update") or {}
    if not upd.get("mechanism"):
        return False, _missing(decl, "secure_update.mechanism")
    if upd.get("signed") is not True:
        return False, "secure_update.signed must be true: the device must verify update authenticity"
    return True, f"update mechanism: {upd['mechanism']} (signed)"


def check_privacy(decl: Declaration, spec: CompiledSpec) -> tuple[bool, str]:
    """`privacy.personal_data` lists spec properties with a purpose, and every hinted-personal property."""
    privacy = decl.raw.get("privacy")
    if not isinstance(privacy, dict) or "personal_data" not in privacy:
        return False, _missing(decl, "privacy.personal_data (use [] when the product processes none)")
    items = privacy["personal_data"]
    if not isinstance(items, list):
        return False, "privacy.personal_data must be a list of {property: 'siid.piid', purpose}"
    problems, declared = [], set()
    keys = {cp.prop.key: cp.prop for cp in spec.properties.values()}
    for i, item in enumerate(items):
        key = str((item or {}).get("property", "")) if isinstance(item, dict) else ""
        if key not in keys:
            problems.append(f"personal_data[{i}]: {key or '?'} is not a property of the spec")
            continue
        if not str(item.get("purpose", "")).strip():
            problems.append(f"personal_data[{i}] ({key}): no purpose")
        declared.add(key)
    undeclared = sorted(k for k, p in keys.items() if p.name in PERSONAL_HINTS and k not in declared)
    if undeclared:
        problems.append(f"properties that are personal data are not declared: {', '.join(undeclared)}")
    if problems:
        return False, "; ".join(problems)
    return True, f"{len(declared)} personal-data propert{'y' if len(declared) == 1 else 'ies'} declared"


MAX_EVIDENCE_BYTES = 10 * 1024 * 1024  # a certificate or lab report (PDF); larger files are refused
EVIDENCE_TEXT_MAX = 200


class EvidenceStatus(StrEnum):
    """Where a piece of evidence stands: a partner's submission waits for the brand; the brand may revoke any."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"


def evidence_problem(status: str, valid_from: date, valid_until: date, today: date) -> str | None:
    """Why a piece of evidence does not count today (None: it counts)."""
    if status == EvidenceStatus.REVOKED:
        return "revoked"
    if status == EvidenceStatus.PENDING:
        return "awaiting the brand's acceptance"
    if today < valid_from:
        return f"valid only from {valid_from}"
    if today > valid_until:
        return f"expired on {valid_until}"
    return None


def check_evidence_text(value: str | None, *, field: str, required: bool = True) -> str:
    """A short, printable text field of a certificate (issuer, number, scope)."""
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"evidence needs {field}", code=ErrorCode.INVALID_EVIDENCE)
    if len(text) > EVIDENCE_TEXT_MAX or any(ord(ch) < 32 for ch in text):
        raise InvalidInput(f"evidence {field} must be at most {EVIDENCE_TEXT_MAX} printable characters",
                           code=ErrorCode.INVALID_EVIDENCE)
    return text


def check_validity(valid_from: date | str | None, valid_until: date | str, today: date) -> tuple[date, date]:
    """Parse and check a certificate's validity window: ISO dates, from ≤ until, not over already."""
    try:
        until = valid_until if isinstance(valid_until, date) else date.fromisoformat(str(valid_until))
        start = today if valid_from in (None, "") else (
            valid_from if isinstance(valid_from, date) else date.fromisoformat(str(valid_from)))
    except ValueError as err:
        raise InvalidInput(f"validity dates must be ISO dates (YYYY-MM-DD): {err}",
                           code=ErrorCode.INVALID_EVIDENCE) from err
    if until < start:
        raise InvalidInput(f"valid_until {until} is before valid_from {start}", code=ErrorCode.INVALID_EVIDENCE)
    if until < today:
        raise InvalidInput(f"this evidence expired on {until}; record a current certificate",
                           code=ErrorCode.INVALID_EVIDENCE)
    return start, until
