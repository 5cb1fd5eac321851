"""Minimal NATS JWT (v2) encode/decode: base64url(header).base64url(claims).base64url(ed25519 sig), signed with nkeys.

PyPI has `nats-jwt` 0.2.2 (self-described "not well-tested", no authorization request/response claims, pulls in
pycryptodome/pytz/dataclasses-json), so this module implements the few claim shapes ecohub needs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

import nacl.exceptions
import nacl.signing
import nkeys

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_STD_CLAIMS = ("aud", "exp", "jti", "iat", "iss", "name", "nbf", "sub")  # Go's ClaimsData field order


class JWTError(ValueError):
    """A token that does not decode or verify."""


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_seed(prefix: int = nkeys.PREFIX_BYTE_ACCOUNT) -> bytes:
    """A fresh nkey seed (S...) for the given role (account by default)."""
    return bytes(nkeys.encode_seed(os.urandom(32), prefix))


def keypair(seed: bytes) -> nkeys.KeyPair:
    """KeyPair from an nkey seed."""
    return nkeys.from_seed(bytearray(seed))


def public_key(kp: nkeys.KeyPair) -> str:
    """The public nkey (A.../U.../N...) as str."""
    return bytes(kp.public_key).decode()


def _verify_key(public: str) -> nacl.signing.VerifyKey:
    """Ed25519 verify key of a public nkey (base32: 1 prefix byte, 32 key bytes, 2 crc bytes)."""
    raw = base64.b32decode(public + "=" * (-len(public) % 8))
    if len(raw) != 35 or not nkeys.valid_public_prefix_byte(raw[0]):
        raise JWTError(f"not a public nkey: {public!r}")
    return nacl.signing.VerifyKey(raw[1:33])


def jti(claims: dict[str, Any]) -> str:
    """Go-compatible jti: base32 (unpadded) of SHA-512/256 over the standard claims with jti empty."""
    std = {k: claims[k] for k in _STD_CLAIMS if k != "jti" and claims.get(k) not in (None, "", 0)}
    digest = hashlib.new("sha512_256", json.dumps(std, separators=(",", ":")).encode()).digest()
    return base64.b32encode(digest).rstrip(b"=").decode()


def encode(claims: dict[str, Any], kp: nkeys.KeyPair) -> str:
    """Sign claims with kp (sets iss, iat, jti) and return the compact JWT."""
    body = dict(claims)
    body["iss"] = public_key(kp)
    body.setdefault("iat", int(time.time()))
    body["jti"] = jti(body)
    head = b64url(json.dumps(HEADER, separators=(",", ":")).encode())
    payload = b64url(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}".encode()
    return f"{head}.{payload}.{b64url(kp.sign(signing_input))}"


def decode(token: str, *, issuer: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Verify the signature (against iss, or the given issuer) and expiry; return the claims."""
    try:
        head_b, payload_b, sig_b = token.strip().split(".")
        header = json.loads(unb64url(head_b))
        claims: dict[str, Any] = json.loads(unb64url(payload_b))
    except (ValueError, json.JSONDecodeError) as exc:
        raise JWTError(f"malformed JWT: {exc}") from exc
    if header.get("alg") != HEADER["alg"]:
        raise JWTError(f"unexpected alg {header.get('alg')!r}")
    if issuer is not None and claims.get("iss") != issuer:
        raise JWTError(f"issuer {claims.get('iss')!r} is not {issuer!r}")
    exp = claims.get("exp")
    if exp and (now or time.time()) > exp:  # refused either way: the cheap check first (a backlog of stale ones)
        raise JWTError("expired")
    try:
        _verify_key(str(claims.get("iss", ""))).verify(f"{head_b}.{payload_b}".encode(), unb64url(sig_b))
    except nacl.exceptions.BadSignatureError as exc:
        raise JWTError("bad signature") from exc
    return claims


def user_claims(
    user_nkey: str,
    *,
    account: str,
    name: str,
    pub_allow: list[str] | None,
    sub_allow: list[str] | None,
    connection_types: list[str] | None = None,
    expires_in: float | None = None,
) -> dict[str, Any]:
    """Claims of a user JWT for the callout (aud = target account in server-config mode; None = no restriction)."""
    nats: dict[str, Any] = {"subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}
    if pub_allow is not None:
        nats["pub"] = {"allow": pub_allow}
    if sub_allow is not None:
        nats["sub"] = {"allow": sub_allow}
    if connection_types:
        nats["allowed_connection_types"] = connection_types
    claims: dict[str, Any] = {"sub": user_nkey, "aud": account, "name": name, "nats": nats}
    if expires_in:
        claims["exp"] = int(time.time() + expires_in)
    return claims


def auth_response_claims(user_nkey: str, server_id: str, *, user_jwt: str = "", error: str = "") -> dict[str, Any]:
    """Claims of an authorization response (exactly one of user_jwt / error)."""
    nats: dict[str, Any] = {"type": "authorization_response", "version": 2}
    if user_jwt:
        nats["jwt"] = user_jwt
    else:
        nats["error"] = error or "not authorized"
    return {"sub": user_nkey, "aud": server_id, "nats": nats}
