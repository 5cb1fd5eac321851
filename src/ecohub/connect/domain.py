"""Pure rules of connect: credentials, bind codes and the topic ACL of the device protocol."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_BYTES = 32
BIND_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: people type these from labels
BIND_CODE_LEN = 8
SERVICE_USER = "ecohub-service"


def new_secret() -> str:
    """A device secret with 256 bits of entropy."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_bind_code() -> str:
    """A short code printed on the device label for claiming it into a home (40 bits)."""
    return "".join(secrets.choice(BIND_ALPHABET) for _ in range(BIND_CODE_LEN))


def hash_secret(secret: str, salt: bytes) -> bytes:
    """Salted SHA-256: secrets are 256-bit random, so a slow KDF would add nothing but connect latency."""
    return hashlib.sha256(salt + secret.encode()).digest()


def check_secret(secret: str, salt: bytes, expected: bytes) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret, salt), expected)


def hash_bind_code(code: str, key: bytes) -> bytes:
    """Bind codes are short, so they are hashed with the hub's secret key (no offline guessing)."""
    return hmac.new(key, code.strip().upper().encode(), hashlib.sha256).digest()

