"""Cell migration 0003 (automation rules and runs) on SQLite and PostgreSQL: up, matches the models, down, up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.migrations import PG, pg_databases, roundtrip

TABLES = {"automation_rules", "automation_runs"}


def test_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, TABLES, up_to="0003", down_to="0002", kept=frozenset({"homes"}))
    engine.dispose()


@pytest.mark.postgres
def test_migration_on_postgres() -> None:
    with pg_databases("ecohub_automate", ("cell",)) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        roundtrip(engine, TABLES, up_to="0003", down_to="0002", kept=frozenset({"homes"}))
        engine.dispose()
