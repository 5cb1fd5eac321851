"""Migrations of the developer platform: global 0007 (apps) and cell 0015 (grants, codes, tokens, push queue)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from ecohub.schema import metadata_for
from ecohub.store.migrate import upgrade_engine
from tests.migrations import PG, downgrade, pg_databases, roundtrip

CELL_TABLES = {"app_grants", "app_grant_devices", "app_auth_codes", "app_tokens", "app_webhooks",
               "app_webhook_deliveries"}


def _global_roundtrip(url: str) -> None:
    engine = create_engine(url)
    upgrade_engine("global_plane", engine)
    assert "apps" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                 metadata_for("global_plane"))
    assert [d for d in diffs if "apps" in repr(d)] == []
    downgrade(engine, "global_plane", "0003")
    assert "apps" not in inspect(engine).get_table_names()
    upgrade_engine("global_plane", engine)
    assert "apps" in inspect(engine).get_table_names()
    engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, CELL_TABLES, up_to="0015", down_to="0010", kept=frozenset({"users", "bindings"}))
    engine.dispose()
    _global_roundtrip(f"sqlite:///{tmp_path / 'global.db'}")


@pytest.mark.postgres
def test_migrations_on_postgres() -> None:
    with pg_databases("ecohub_apps", ("cell", "global")) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        roundtrip(engine, CELL_TABLES, up_to="0015", down_to="0010", kept=frozenset({"users", "bindings"}))
        engine.dispose()
        _global_roundtrip(f"{PG}/{prefix}_global")
