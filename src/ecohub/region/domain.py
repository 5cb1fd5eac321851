"""Where a device's data lives: its id carries the cell that serves it (routing data, not personal data)."""

from __future__ import annotations

import secrets

from ecohub.errors import InvalidInput

DID_RANDOM_BYTES = 8


def new_did(cell: str) -> str:
    """A fresh opaque device id `{cell}-{16 hex}`: short enough for MQTT 3.1.1 client ids (≤ 23)."""
    return f"{cell}-{secrets.token_hex(DID_RANDOM_BYTES)}"


def cell_of_did(did: str) -> str:
    """The cell named by a device id; raises InvalidInput for a malformed id."""
    cell, sep, rest = did.partition("-")
    if not sep or not cell.isalnum() or len(rest) != DID_RANDOM_BYTES * 2 or not _is_hex(rest):
        raise InvalidInput(f"{did!r} is not a device id (expected '<cell>-<16 hex digits>')", code="invalid_did")
    return cell


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
