"""Cell migration 0019 (the push outbox) matches the model, downgrades cleanly and upgrades again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.migrations import PG, pg_databases, roundtrip

TABLES = {"app_push_outbox"}


def test_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, TABLES, down_to="0018", kept=frozenset({"app_webhook_deliveries", "notifications"}))
    engine.dispose()


@pytest.mark.postgres
def test_migration_on_postgres() -> None:
    with pg_databases("ecohub_outbox", ("cell",)) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        roundtrip(engine, TABLES, down_to="0018", kept=frozenset({"app_webhook_deliveries", "notifications"}))
        engine.dispose()
