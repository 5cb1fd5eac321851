"""Migration 0002 runs on PostgreSQL (a throwaway database) and loads the markets and the taxonomy."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from ecohub.store.migrate import upgrade_engine
from tests.conftest import postgres_reachable

BASE = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.mark.postgres
def test_0002_upgrades_and_downgrades_on_postgresql() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"ecohub_eco_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(f"{BASE}/{name}")
    try:
        upgrade_engine("global_plane", engine, "0002")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM markets")).scalar() == 91
            assert conn.execute(text("SELECT count(*) FROM categories")).scalar_one() >= 30
            profile = conn.execute(text("SELECT cert_profile FROM markets WHERE code = 'GB'")).scalar_one()
            assert {"UKCA", "PSTI"} <= set(profile)
            assert conn.execute(text("SELECT cell FROM markets WHERE code = 'IN'")).scalar_one() == "in"
        upgrade_engine("global_plane", engine, "head")
        from alembic import command

        from ecohub.store.migrate import alembic_config

        with engine.begin() as conn:
            cfg = alembic_config("global_plane", engine)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('markets')")).scalar() is None
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
