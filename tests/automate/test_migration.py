"""Cell migration 0003 (automation rules and runs) on SQLite and PostgreSQL: up, matches the models, down, up."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from ecohub.store.migrate import alembic_config, upgrade_engine
from ecohub.store.registry import metadata_for
from tests.conftest import postgres_reachable

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
TABLES = {"automation_rules", "automation_runs"}


def _roundtrip(engine: Engine) -> None:
    upgrade_engine("cell", engine, "0003")
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata_for("cell"))
    ours = [d for d in diffs if any(t in repr(d) for t in TABLES)]
    assert ours == [], f"models and migration 0003 disagree: {ours}"
    with engine.begin() as conn:
        cfg = alembic_config("cell", engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert "homes" in inspect(engine).get_table_names()
    upgrade_engine("cell", engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    _roundtrip(engine)
    engine.dispose()


@pytest.mark.postgres
def test_migration_on_postgres() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"ecohub_automate_{secrets.token_hex(4)}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        engine = create_engine(f"{PG}/{name}")
        _roundtrip(engine)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
