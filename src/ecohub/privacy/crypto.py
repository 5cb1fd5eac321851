"""Crypto-shredding: per-subject AES-256-GCM data keys wrapped by a versioned per-cell key kept in files."""

from __future__ import annotations

import base64
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.errors import Conflict, ErrorCode, NotFound
from ecohub.privacy.models import SubjectKey
from ecohub.store import Databases, utcnow

SEALED = "enc:v1:"
NONCE = 12


class Shredded(NotFound):
    """The subject's key was destroyed: their encrypted data can no longer be read by anyone."""

    code = ErrorCode.SUBJECT_ERASED


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM with a fresh 96-bit nonce: nonce ‖ ciphertext ‖ tag."""
    nonce = secrets.token_bytes(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Inverse of `encrypt`; raises cryptography's InvalidTag for a wrong key, AAD or a tampered blob."""
    return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad)


def seal_text(key: bytes, text: str, aad: bytes) -> str:
    """Text sealed for a text column: `enc:v1:` + base64(nonce ‖ ciphertext ‖ tag)."""
    return SEALED + base64.b64encode(encrypt(key, text.encode(), aad)).decode()


def sealed_blob(stored: str) -> bytes:
    """The encrypted bytes of a `seal_text` value."""
    return base64.b64decode(stored[len(SEALED):])


class CellKeys:
    """The key-encryption keys of each cell: `keys/{cell}/v{n}.key` (32 bytes, 0600); the newest one wraps."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self._lock = threading.Lock()

    def _dir(self, cell: str) -> Path:
        return self.key_dir / cell

    def versions(self, cell: str) -> list[int]:
        """Versions of a cell's key still on disk, oldest first."""
        d = self._dir(cell)
        return sorted(int(p.stem[1:]) for p in d.glob("v*.key")) if d.exists() else []

    def current(self, cell: str) -> tuple[int, bytes]:
        """(version, key) of the cell's wrapping key, created on first use."""
        with self._lock:
            versions = self.versions(cell)
            if not versions:
                return 1, self._create(cell, 1)
            return versions[-1], self.get(cell, versions[-1])

    def get(self, cell: str, version: int) -> bytes:
        """One version of a cell's key; Shredded when it was destroyed."""
        path = self._dir(cell) / f"v{version}.key"
        if not path.exists():
            raise Shredded(f"cell key v{version} of {cell!r} was destroyed", code=ErrorCode.CELL_KEY_DESTROYED)
        return path.read_bytes()

    def _create(self, cell: str, version: int) -> bytes:
        d = self._dir(cell)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(d / f"v{version}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key

    def rotate(self, cell: str) -> tuple[int, bytes]:
        """A new current version (the old ones stay until `destroy_before`)."""
        with self._lock:
            version = (self.versions(cell) or [0])[-1] + 1
            return version, self._create(cell, version)

    def destroy_before(self, cell: str, version: int) -> list[int]:
        """Delete every key version older than `version`; → the versions destroyed."""
        gone = [v for v in self.versions(cell) if v < version]
        for v in gone:
            (self._dir(cell) / f"v{v}.key").unlink()
        return gone


def _wrap_aad(cell: str, subject: str, version: int) -> bytes:
    return f"subject-key:{cell}:{subject}:v{version}".encode()


class SubjectKeys:
    """Per-subject data keys in each cell's `subject_keys` table, wrapped by the cell key."""

    def __init__(self, dbs: Databases | None, cell_keys: CellKeys) -> None:
        self.dbs = dbs
        self.cell_keys = cell_keys

    def ensure(self, s: Session, cell: str, subject: str) -> bytes:
        """The subject's data key, created in the caller's transaction if it has none; Shredded once destroyed."""
        row = s.get(SubjectKey, subject)
        if row is not None:
            return self._unwrap(cell, row)
        version, kek = self.cell_keys.current(cell)
        key = AESGCM.generate_key(bit_length=256)
        s.add(SubjectKey(subject_id=subject, kek_version=version,
                         wrapped=encrypt(kek, key, _wrap_aad(cell, subject, version))))
        s.flush()
        return key

    def get(self, s: Session, cell: str, subject: str) -> bytes:
        """The subject's data key; NotFound without one, Shredded after erasure."""
        row = s.get(SubjectKey, subject)
        if row is None:
            raise NotFound(f"subject {subject} has no data key in cell {cell!r}", code=ErrorCode.NO_SUBJECT_KEY)
        return self._unwrap(cell, row)

    def _unwrap(self, cell: str, row: SubjectKey) -> bytes:
        if row.wrapped is None:
            raise Shredded(f"the data key of subject {row.subject_id} was destroyed (erased)")
        kek = self.cell_keys.get(cell, row.kek_version)
        try:
            return decrypt(kek, row.wrapped, _wrap_aad(cell, row.subject_id, row.kek_version))
        except InvalidTag as err:
            raise Shredded(f"the data key of subject {row.subject_id} cannot be unwrapped") from err

    def destroy(self, s: Session, subject: str) -> bool:
        """Forget the subject's key (a tombstone row remains, so a second erasure is recognised)."""
        row = s.get(SubjectKey, subject)
        if row is None:
            s.add(SubjectKey(subject_id=subject, wrapped=None, kek_version=0, destroyed_at=utcnow()))
            return False
        if row.wrapped is None:
            raise Conflict(f"subject {subject} was already erased", code=ErrorCode.ALREADY_ERASED)
        row.wrapped, row.destroyed_at = None, utcnow()
        return True

    def rotate_cell(self, cell: str) -> dict[str, int]:
        """Re-wrap every live key under a new cell key, then destroy the old versions: copies of the database
        made before (backups) hold keys wrapped by a key that no longer exists."""
        assert self.dbs is not None
        version, kek = self.cell_keys.rotate(cell)
        n = 0
        with self.dbs.cell_session(cell) as s:
            for row in s.scalars(select(SubjectKey).where(SubjectKey.wrapped.is_not(None))):
                key = self._unwrap(cell, row)
                row.wrapped = encrypt(kek, key, _wrap_aad(cell, row.subject_id, version))
                row.kek_version = version
                n += 1
        destroyed = self.cell_keys.destroy_before(cell, version)
        return {"version": version, "rewrapped": n, "destroyed_versions": len(destroyed)}


def open_text(key: bytes, stored: str, aad: bytes) -> str:
    """Decrypt a `seal_text` value with a subject key; InvalidTag when the key, AAD or blob is wrong."""
    return decrypt(key, sealed_blob(stored), aad).decode()


class TextCipher:
    """Seals text columns under their subject's data key: the primitive a context uses for a personal text column.

    Home seals `users.email` with it; erasing the subject (destroying the key) makes every copy unreadable.
    """

    def __init__(self, dbs: Databases, keys: SubjectKeys) -> None:
        self.dbs = dbs
        self.keys = keys

    def seal(self, s: Session, cell: str, subject: str, text: str, aad: bytes) -> str:
        """Encrypt under the subject's key, created in the caller's transaction if new (so a failed write leaves
        no key behind)."""
        return seal_text(self.keys.ensure(s, cell, subject), text, aad)

    def open(self, cell: str, subject: str, stored: str, aad: bytes) -> str:
        """Decrypt a stored value (plain text rows from before sealing are returned as they are)."""
        if not stored.startswith(SEALED):
            return stored
        with self.dbs.cell_session(cell) as s:
            key = self.keys.get(s, cell, subject)
        return open_text(key, stored, aad)
