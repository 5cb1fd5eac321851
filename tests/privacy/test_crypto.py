"""Crypto-shredding: sealed emails, subject keys wrapped by the cell key, and a real backup copy made unreadable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from ecohub.bootstrap import Services
from ecohub.errors import NotFound
from ecohub.home.accounts import read_email_from_copy
from ecohub.privacy.crypto import CellKeys, Shredded, SubjectKeys, decrypt, encrypt

keys = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(key=keys, other=keys, plaintext=st.binary(max_size=2048), aad=st.binary(max_size=64))
def test_round_trip_and_wrong_key_fails(key: bytes, other: bytes, plaintext: bytes, aad: bytes) -> None:
    blob = encrypt(key, plaintext, aad)
    assert decrypt(key, blob, aad) == plaintext
    assert plaintext not in blob[12:] or len(plaintext) < 4
    if other != key:
        with pytest.raises(InvalidTag):
            decrypt(other, blob, aad)
    with pytest.raises(InvalidTag):
        decrypt(key, blob, aad + b"x")


@settings(max_examples=20, deadline=None)
@given(subject=st.text(alphabet="0123456789abcdef", min_size=1, max_size=24))
def test_subject_keys_wrap_and_rotate(tmp_path_factory: pytest.TempPathFactory, subject: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from ecohub.privacy.models import SubjectKey

    d = tmp_path_factory.mktemp("keys")
    engine = create_engine(f"sqlite:///{d / 'k.db'}")
    SubjectKey.__table__.create(engine)  # type: ignore[attr-defined]
    ring = SubjectKeys(None, CellKeys(d / "keys"))
    with Session(engine) as s:
        key = ring.ensure(s, "eu", subject)
        assert ring.get(s, "eu", subject) == key and len(key) == 32
        row = s.get(SubjectKey, subject)
        assert row is not None and key not in (row.wrapped or b"")
        # the wrap is bound to its cell: even with the same key file under "us", the AAD does not match
        (d / "keys" / "us").mkdir(mode=0o700)
        (d / "keys" / "us" / "v1.key").write_bytes((d / "keys" / "eu" / "v1.key").read_bytes())
        with pytest.raises(Shredded):
            ring.get(s, "us", subject)
        ring.destroy(s, subject)
        with pytest.raises(Shredded):
            ring.get(s, "eu", subject)
    engine.dispose()
    assert (d / "keys" / "eu" / "v1.key").stat().st_mode & 0o777 == 0o600


def _backup(src: Path, dst: Path) -> None:
    """A real online backup of the SQLite file (what an operator's backup job does)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def test_a_backup_made_before_erasure_cannot_be_read_for_that_subject(services: Services, tmp_path: Path) -> None:
    accounts = services.home.accounts
    ann = accounts.signup(email="ann@example.org", password="correct horse battery", country="DE")
    bob = accounts.signup(email="bob@example.org", password="correct horse battery", country="FR")
    db = services.settings.data_dir / "cell-eu.db"
    raw = sqlite3.connect(db).execute("select email from users").fetchall()
    assert all(r[0].startswith("enc:v1:") and "example.org" not in r[0] for r in raw)

    backup = tmp_path / "backup-before.db"
    _backup(db, backup)
    cell_keys = services.privacy.keys.cell_keys
    assert read_email_from_copy(backup, cell_keys, "eu", ann["user_id"]) == "ann@example.org"

    receipt = services.privacy.dsr.erase("eu", ann["user_id"], actor="operator:test")
    assert receipt["status"] == "complete" and receipt["steps"]["cell_key_rotation"]["destroyed_versions"] == 1
    with pytest.raises(Shredded):
        read_email_from_copy(backup, cell_keys, "eu", ann["user_id"])
    with pytest.raises(NotFound):
        read_email_from_copy(db, cell_keys, "eu", ann["user_id"])
    # everyone else still reads fine in the live database after the re-wrap
    assert read_email_from_copy(db, cell_keys, "eu", bob["user_id"]) == "bob@example.org"
    assert accounts.signin(email="bob@example.org", password="correct horse battery")["user_id"] == bob["user_id"]


def test_cell_key_files_are_private(tmp_path: Path) -> None:
    ring = CellKeys(tmp_path / "keys")
    version, key = ring.current("eu")
    assert version == 1 and len(key) == 32 and AESGCM(key)
    assert (tmp_path / "keys" / "eu" / "v1.key").stat().st_mode & 0o777 == 0o600
    assert ring.rotate("eu")[0] == 2 and ring.destroy_before("eu", 2) == [1] and ring.versions("eu") == [2]
