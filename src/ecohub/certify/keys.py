"""The brand's Ed25519 signing key: generated once per data dir (0600); the public key is exportable."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ecohub.errors import ErrorCode, InvalidInput

KEY_FILE = "certify-brand-ed25519.pem"


def key_path(data_dir: Path) -> Path:
    """Where the brand key of a data dir lives."""
    return data_dir / KEY_FILE


def brand_key(data_dir: Path) -> Ed25519PrivateKey:
    """Load the brand key, creating it (0600, never overwritten) on first use."""
    path = key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key", code=ErrorCode.INVALID_BRAND_KEY)
    return loaded


def brand_public_key(data_dir: Path) -> Ed25519PublicKey | None:
    """The public half of the data dir's brand key, or None when none was generated yet."""
    return brand_key(data_dir).public_key() if key_path(data_dir).exists() else None


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of sha256 over the raw public key."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), for partners and the listing gate."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM or base64 of the raw 32 bytes."""
    try:
        if data.strip().startswith(b"-----BEGIN"):
            loaded = serialization.load_pem_public_key(data)
        else:
            loaded = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except ValueError as err:
        raise InvalidInput(f"not an Ed25519 public key: {err}", code=ErrorCode.INVALID_PUBLIC_KEY) from err
    if not isinstance(loaded, Ed25519PublicKey):
        raise InvalidInput("the public key is not Ed25519", code=ErrorCode.INVALID_PUBLIC_KEY)
    return loaded
