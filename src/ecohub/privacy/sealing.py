"""Sealing personal payloads with the data key of their owner, so erasing the owner shreds them.

Telemetry values, device event arguments and the twin's reported values of a bound device are stored as
AES-GCM blobs under the owner's subject key (with the row's table, device and key as associated data, so a
blob cannot be moved to another row). Data of an unbound device belongs to no person and stays readable.
Names a user gives (homes, rooms, bound devices) are sealed the same way under the home owner's key and kept
as text (`enc:v1:` + base64), like the account's email.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from ecohub.errors import NotFound
from ecohub.privacy.crypto import NONCE, SEALED, Shredded, SubjectKeys, seal_text, sealed_blob

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
CACHE_LIMIT = 200_000
UNREADABLE_NAME = "(erased)"
# (session, dids) → (did, owner) of each bound device among them: home's service layer answers it.
OwnersOf = Callable[[Session, Sequence[str]], Iterable[tuple[str, str]]]


def telemetry_aad(did: str, key: str) -> bytes:
    """Associated data of one telemetry value: its device and property."""
    return f"telemetry:{did}:{key}".encode()


def event_aad(did: str, siid: int, eiid: int) -> bytes:
    """Associated data of one device event's arguments."""
    return f"device_events:{did}:{siid}.{eiid}".encode()


def twin_aad(did: str, key: str) -> bytes:
    """Associated data of a twin's reported value."""
    return f"twin:{did}:{key}".encode()


def name_aad(table: str, row_id: str) -> bytes:
    """Associated data of a name a user gave: the table and the row it names."""
    return f"{table}.name:{row_id}".encode()


@dataclass(frozen=True, slots=True)
class Seal:
    """The owner of a device and a cipher keyed with their data key."""

    subject: str
    aead: AESGCM

    def seal(self, value: Any, aad: bytes) -> bytes:
        """JSON-encode and encrypt one value: nonce ‖ ciphertext ‖ tag."""
        nonce = os.urandom(NONCE)
        return nonce + self.aead.encrypt(nonce, _encode(value), aad)


def seal_fields(seal: Seal | None, value: Any, aad: bytes) -> tuple[Any, str | None, bytes | None]:
    """The (plain, subject, sealed) columns of one payload: plain without a seal, else only the ciphertext."""
    if seal is None:
        return value, None, None
    return None, seal.subject, seal.seal(value, aad)


class Opener:
    """Decrypts the sealed values of one read; each subject's key is unwrapped once."""

    def __init__(self, keys: SubjectKeys, session: Session, cell: str) -> None:
        self.keys = keys
        self.session = session
        self.cell = cell
        self._aeads: dict[str, AESGCM | None] = {}
        self.unreadable = 0

    def open(self, subject: str, blob: bytes, aad: bytes) -> tuple[bool, Any]:
        """(True, value), or (False, None) when the subject's key was destroyed or the blob was tampered with."""
        readable, text = self.raw(subject, blob, aad)
        return (True, _decode(text)) if readable else (False, None)

    def raw(self, subject: str, blob: bytes, aad: bytes) -> tuple[bool, bytes]:
        """(True, the JSON text sealed), or (False, b"") when it cannot be read."""
        if subject not in self._aeads:
            try:
                self._aeads[subject] = AESGCM(self.keys.get(self.session, self.cell, subject))
            except NotFound:  # destroyed (Shredded) or never there (a row copied from elsewhere): unreadable
                self._aeads[subject] = None
        aead = self._aeads[subject]
        if aead is None:
            self.unreadable += 1
            return False, b""
        try:
            return True, aead.decrypt(blob[:NONCE], blob[NONCE:], aad)
        except InvalidTag:
            self.unreadable += 1
            return False, b""

    def text(self, subject: str, stored: str, aad: bytes) -> str:
        """A name as stored: opened when sealed, as it is when written before sealing; UNREADABLE_NAME if shredded."""
        if not stored.startswith(SEALED):
            return stored
        readable, text = self.raw(subject, sealed_blob(stored), aad)
        return text.decode() if readable else UNREADABLE_NAME

    def name(self, owner: str, table: str, row_id: str, stored: str) -> str:
        """A name of a home, room or bound device (sealed under the home owner's key), opened."""
        return self.text(owner, stored, name_aad(table, row_id))

    def value(self, plain: Any, subject: str | None, blob: bytes | None, aad: bytes) -> tuple[bool, Any]:
        """A stored value whether sealed or not: (readable, value)."""
        if blob is None or subject is None:
            return True, plain
        return self.open(subject, bytes(blob), aad)


class PayloadSealer:
    """Finds the seal of each bound device: its home owner's data key.

    Owners are asked of `owners_of` (home's bindings) in the writer's own transaction on every batch (one indexed
    query), so a device sealed for its new owner from the first message after binding, and never for an erased
    one. Unwrapped keys are cached per worker for `ttl_s`.
    """

    def __init__(self, keys: SubjectKeys, *, owners_of: OwnersOf, ttl_s: float = 60.0) -> None:
        self.keys = keys
        self.owners_of = owners_of
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, Seal]] = {}
        self._lock = threading.Lock()

    def seals(self, s: Session, cell: str, dids: Iterable[str]) -> dict[str, Seal]:
        """The seal of each bound device among `dids`, in the caller's transaction; unbound devices are absent."""
        wanted = list(set(dids))
        if not wanted:
            return {}
        owners = self.owners_of(s, wanted)
        now = time.monotonic()
        out: dict[str, Seal] = {}
        for did, owner in owners:
            hit = self._cache.get((cell, owner))
            if hit is None or hit[0] <= now:
                hit = (now + self.ttl_s, Seal(owner, AESGCM(self._key(s, cell, owner))))
                with self._lock:
                    if len(self._cache) >= CACHE_LIMIT:
                        self._cache.clear()
                    self._cache[(cell, owner)] = hit
            out[did] = hit[1]
        return out

    def _key(self, s: Session, cell: str, owner: str) -> bytes:
        try:
            return self.keys.ensure(s, cell, owner)
        except Shredded:
            # The owner was erased while the binding is still being deleted: seal under a key nobody keeps.
            return AESGCM.generate_key(bit_length=256)

    def seal_text(self, s: Session, cell: str, owner: str, text: str, aad: bytes) -> str:
        """Seal a name under `owner`'s key (created if they have none) as `enc:v1:` + base64, in `s`."""
        return seal_text(self.keys.ensure(s, cell, owner), text, aad)

    def forget(self, cell: str, subject: str) -> None:
        """Drop a subject's cached key (after their erasure in this process)."""
        with self._lock:
            self._cache.pop((cell, subject), None)

    def opener(self, s: Session, cell: str) -> Opener:
        """An opener for reads inside `s`."""
        return Opener(self.keys, s, cell)
