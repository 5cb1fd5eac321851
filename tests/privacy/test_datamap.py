"""The data map: every column of both planes is declared, a new undeclared one fails, the CLI renders Art. 30."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Column, String, Table
from typer.testing import CliRunner

from ecohub.cli.app import app
from ecohub.home.models import User
from ecohub.privacy import datamap
from ecohub.privacy.domain import PersonalData
from ecohub.schema import metadata_for
from ecohub.store.db import CellBase, GlobalBase


def test_every_column_of_both_planes_is_declared() -> None:
    assert datamap.problems() == []
    declared = {(e.plane, e.table, e.column) for e in datamap.entries()}
    for plane in ("global_plane", "cell"):
        for table in metadata_for(plane).tables.values():
            assert {(plane, table.name, c.name) for c in table.columns} <= declared


def test_the_personal_stores_include_every_subject_table() -> None:
    assert {"users", "user_tokens", "homes", "rooms", "home_members", "bindings", "twins", "twin_properties",
            "telemetry", "device_events", "commands", "dead_letters", "audit_log", "consents", "dsr_requests",
            "subject_keys"} <= set(datamap.personal_tables())
    assert isinstance(User.__privacy__["email"], PersonalData)  # type: ignore[attr-defined]


def test_a_new_undeclared_table_or_column_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    for plane, base in (("cell", CellBase), ("global_plane", GlobalBase)):
        scratch = Table("scratch_notes", base.metadata, Column("id", String, primary_key=True))
        try:
            assert f"{plane}.scratch_notes.id has no privacy declaration" in datamap.problems()
        finally:
            base.metadata.remove(scratch)
    monkeypatch.delitem(User.__privacy__, "country")  # type: ignore[attr-defined]
    assert datamap.problems() == ["cell.users.country has no privacy declaration"]


def test_cli_renders_the_map_and_the_record_of_processing() -> None:
    result = CliRunner().invoke(app, ["privacy", "datamap", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    users = next(t for t in doc["tables"] if t["table"] == "users")
    assert users["personal"]["email"]["legal_basis"].startswith("Art. 6(1)(b)")
    ropa = {a["purpose"]: a for a in doc["record_of_processing"]}
    assert "cell.telemetry" in ropa["operating the user's devices"]["tables"]
    assert "consent" in ropa["operating the user's devices"]["recipients"]
    text = CliRunner().invoke(app, ["privacy", "datamap"])
    assert text.exit_code == 0 and "record of processing" in text.output
