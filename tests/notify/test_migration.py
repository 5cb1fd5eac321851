"""Cell migration 0018 (notifications) matches the model, downgrades cleanly and upgrades again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.migrations import PG, pg_databases, roundtrip

TABLES = {"notifications"}


def test_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, TABLES, down_to="0016", kept=frozenset({"users", "scenes"}))
    engine.dispose()


@pytest.mark.postgres
def test_migration_on_postgres() -> None:
    with pg_databases("ecohub_notify", ("cell",)) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        roundtrip(engine, TABLES, down_to="0016", kept=frozenset({"users", "scenes"}))
        engine.dispose()
