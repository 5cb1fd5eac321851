"""Pure rules of the home context: home roles, user tokens, emails, property resolution."""

from __future__ import annotations

import functools
import secrets
import unicodedata
from enum import IntEnum
from typing import Any

from ecohub.auth import USER_TOKEN_PREFIX
from ecohub.errors import ErrorCode, InvalidInput, NotFound
from ecohub.spec import Property, Spec

MIN_PASSWORD = 10
MAX_PASSWORD = 256


class HomeRole(IntEnum):
    """What a user may do in a home; higher includes lower."""

    GUEST = 1  # view
    MEMBER = 2  # view and control
    OWNER = 3  # everything: bind, unbind, share, rename, delete

    @classmethod
    def parse(cls, text: str) -> HomeRole:
        """`member` or `guest` (owners are not invited)."""
        if text not in ("member", "guest"):
            raise InvalidInput(f"role must be 'member' or 'guest', got {text!r}", code=ErrorCode.INVALID_ROLE)
        return cls[text.upper()]

    @property
    def label(self) -> str:
        """The role's name as the API shows it."""
        return self.name.lower()


def new_user_token(cell: str) -> str:
    """A user access token that names its cell, so the API checks it without a global lookup."""
    return f"{USER_TOKEN_PREFIX}{cell}_{secrets.token_urlsafe(32)}"


def cell_of_user_token(token: str) -> str | None:
    """The cell named by a user token, or None when it is not a well-formed user token."""
    if not token.startswith(USER_TOKEN_PREFIX):
        return None
    cell, sep, rest = token[len(USER_TOKEN_PREFIX):].partition("_")
    return cell if sep and cell.isalnum() and len(rest) >= 32 else None


def normalize_email(email: str) -> str:
    """Trimmed, lower-cased email; refuses what is clearly not an address."""
    e = email.strip().lower()
    local, at, domain = e.rpartition("@")
    if not at or not local or "." not in domain or len(e) > 254 or any(c.isspace() for c in e):
        raise InvalidInput("email is not a valid address", code=ErrorCode.INVALID_EMAIL)
    return e


def check_password(password: str, *, context: tuple[str, ...] = ()) -> None:
    """NIST SP 800-63B: a length of 10 to 256, no control characters, not a known common or breached password,
    not the account's own words (the email's parts); no composition rules."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                           code=ErrorCode.WEAK_PASSWORD)
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise InvalidInput("password must not contain control characters (tabs, newlines, NUL …)",
                           code=ErrorCode.WEAK_PASSWORD)
    folded = unicodedata.normalize("NFKC", password).casefold()
    if len(set(folded)) == 1 or folded.strip() == "":
        raise InvalidInput("password must not be one character repeated", code=ErrorCode.WEAK_PASSWORD)
    if folded in _common_passwords() or any(c and c.casefold() == folded for c in context):
        raise InvalidInput("this password is on the list of common and breached passwords; choose another",
                           code=ErrorCode.WEAK_PASSWORD)


@functools.cache
def _common_passwords() -> frozenset[str]:
    """30,000 of the most common passwords from breach corpora (shipped by zxcvbn), loaded on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def resolve_property(spec: Spec, ref: str) -> Property:
    """A property by `siid.piid`, by `service.property` name or by a property name unique in the spec."""
    ref = ref.strip()
    siid, dot, piid = ref.partition(".")
    if dot and siid.isdigit() and piid.isdigit():
        prop = spec.prop(int(siid), int(piid))
        if prop is None:
            raise NotFound(f"property {ref} is not in the spec", code=ErrorCode.UNKNOWN_PROPERTY)
        return prop
    if dot:
        matches = [p for s in spec.services if s.name == siid for p in s.properties if p.name == piid]
    else:
        matches = [p for p in spec.properties() if p.name == ref]
    if not matches:
        raise NotFound(f"no property named {ref!r} in the spec", code=ErrorCode.UNKNOWN_PROPERTY)
    if len(matches) > 1:
        options = ", ".join(f"{qualified_name(spec, p)} ({p.key})" for p in matches)
        raise InvalidInput(f"property name {ref!r} is ambiguous: use one of {options}",
                           code=ErrorCode.AMBIGUOUS_PROPERTY)
    return matches[0]


def qualified_name(spec: Spec, prop: Property) -> str:
    """`service.property`, e.g. `switch.on`."""
    service = spec.service(prop.siid)
    return f"{service.name if service else prop.siid}.{prop.name}"


def describe_property(spec: Spec, prop: Property) -> dict[str, Any]:
    """Friendly facts of a property for a phone app, next to its raw key."""
    service = spec.service(prop.siid)
    out: dict[str, Any] = {
        "key": prop.key,
        "name": qualified_name(spec, prop),
        "description": prop.description,
        "service": service.description if service else "",
        "format": prop.format,
        "access": sorted(a.value for a in prop.access),
        "unit": prop.unit if prop.unit and prop.unit != "none" else None,
    }
    if prop.value_range is not None:
        r = prop.value_range
        out["range"] = {"min": r.min, "max": r.max, "step": r.step}
    if prop.value_list:
        out["values"] = [{"value": v.value, "description": v.description} for v in prop.value_list]
    return out
