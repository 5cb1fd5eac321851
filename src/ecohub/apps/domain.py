"""Pure rules of the developer platform: scopes, redirect URIs, token formats, webhook signatures, backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import itertools
import json
import random
import re
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

from ecohub.auth import Scope
from ecohub.errors import ErrorCode, InvalidInput

CLIENT_PREFIX = "app_"
SECRET_PREFIX = "ehs_"
ACCESS_PREFIX = "eha_"
REFRESH_PREFIX = "ehr_"
WEBHOOK_SECRET_PREFIX = "whsec_"
ALL_SCOPES = tuple(s.value for s in Scope)
DEFAULT_SCOPES = ALL_SCOPES  # what an app may ask for when it registered no scopes
ACCESS_TTL_S = 3600
REFRESH_TTL_S = 60 * 24 * 3600
CODE_TTL_S = 600  # RFC 6749 §4.1.2: a code lives at most ten minutes

HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
EVENT_TYPES = ("device.properties", "device.event", "device.online", "notification")
NOTIFICATION_SCOPE = Scope.DEVICES_READ  # what a grant needs to receive its user's notifications
MAX_BATCH = 500  # messages one batched POST may carry at the most


def sha256(text: str) -> str:
    """The stored form of a high-entropy secret (client secret, code, token)."""
    return hashlib.sha256(text.encode()).hexdigest()


def parse_scopes(asked: list[str] | str | None, *, allowed: tuple[str, ...] = ALL_SCOPES) -> list[str]:
    """Scopes from a list or a space-separated string: known, within `allowed`, deduplicated, in canonical order."""
    if asked is None:
        return list(allowed)
    items = asked.split() if isinstance(asked, str) else [s for a in asked for s in a.replace(",", " ").split()]
    unknown = [s for s in items if s not in ALL_SCOPES]
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r} (known: {' '.join(ALL_SCOPES)})",
                           code=ErrorCode.INVALID_SCOPE)
    beyond = [s for s in items if s not in allowed]
    if beyond:
        raise InvalidInput(f"scope {beyond[0]!r} was not registered for this app", code=ErrorCode.INVALID_SCOPE)
    return [s for s in ALL_SCOPES if s in items]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> str:
    """OAuth 2.1 redirect URIs: absolute https (or http on loopback, RFC 8252), no fragment, no credentials; they
    are compared by exact string match later."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"redirect URI {uri!r} must be an absolute https URL", code=ErrorCode.INVALID_REDIRECT_URI)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidInput(f"redirect URI {uri!r} must use https (plain http only on a loopback address)",
                           code=ErrorCode.INVALID_REDIRECT_URI)
    if not HOST.fullmatch(parts.netloc.split("@")[-1]):  # the consent page's CSP names this origin: keep it plain
        raise InvalidInput(f"redirect URI {uri!r} has an unusual host", code=ErrorCode.INVALID_REDIRECT_URI)
    if parts.fragment or parts.username or parts.password or len(uri) > 500:
        raise InvalidInput(f"redirect URI {uri!r} must have no fragment or credentials (and at most 500 chars)",
                           code=ErrorCode.INVALID_REDIRECT_URI)
    return uri


def new_token(prefix: str, cell: str) -> str:
    """A bearer secret that names its cell (checked there without a global lookup)."""
    return f"{prefix}{cell}_{secrets.token_urlsafe(32)}"


def cell_of_token(token: str, prefix: str) -> str | None:
    """The cell a token of `prefix` names, or None when it is not one."""
    if not token.startswith(prefix):
        return None
    cell, sep, rest = token[len(prefix):].partition("_")
    return cell if sep and cell.isalnum() and len(rest) >= 32 else None


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")); the key is the
    base64 part of a `whsec_` secret."""
    key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a received push the way a subscriber should (any of the space-separated signatures may match)."""
    expected = sign_webhook(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(hmac.compare_digest(expected, sig) for sig in headers["webhook-signature"].split())


def check_batch_max(value: object) -> int:
    """A subscription's `batch_max`: a whole number from 1 (one message per POST, the default) to MAX_BATCH."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH:
        shown = repr(value) if len(repr(value)) <= 20 else repr(value)[:20] + "…"
        raise InvalidInput(f"batch_max must be a whole number from 1 to {MAX_BATCH}, not {shown}",
                           code=ErrorCode.INVALID_BATCH_MAX)
    return value


def message_ids(now_ms: int) -> Iterator[str]:
    """Ids for the messages queued at `now_ms` (each one's `webhook-id`): unique (a random part per call), and
    sorting in queueing order within the millisecond (a batch lists its messages in that order)."""
    call = secrets.token_hex(6)
    return (f"msg_{now_ms:011x}{seq:06x}{call}" for seq in itertools.count())


def batch_id(message_ids: list[str]) -> str:
    """The `webhook-id` of a batched POST: derived from the ids it carries, so resending the same messages together
    repeats it (a receiver still deduplicates by each event's own `id`: a retry may group them differently)."""
    return "bat_" + hashlib.sha256("\n".join(message_ids).encode()).hexdigest()[:28]


def batch_body(events: list[tuple[str, str]]) -> bytes:
    """The body of a batched POST from (message id, payload JSON as stored) pairs: `{"type": "batch", "events":
    [...]}`, each event the payload a single delivery would carry (`type`, `timestamp`, `data`) with its message id
    (a single delivery's `webhook-id`) as `id` first. Spliced as text: the payloads are not decoded and encoded
    again."""
    parts = []
    for msg_id, payload in events:
        rest = payload.lstrip()[1:].lstrip()  # the object's members after its "{"
        parts.append('{"id":' + json.dumps(msg_id) + ("}" if rest.startswith("}") else "," + rest))
    return ('{"type":"batch","events":[' + ",".join(parts) + "]}").encode()


def new_webhook_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def backoff_s(attempt: int, *, base: float = 2.0, cap: float = 3600.0, rng: random.Random | None = None) -> float:
    """Seconds before retry `attempt` (1, 2, …): exponential with full jitter (AWS architecture blog), capped."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)
