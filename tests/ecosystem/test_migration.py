"""Migration 0002 runs on PostgreSQL (a throwaway database) and loads the markets and the taxonomy."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from ecohub.store.migrate import upgrade_engine
from tests.migrations import PG, downgrade, pg_databases


@pytest.mark.postgres
def test_0002_upgrades_and_downgrades_on_postgresql() -> None:
    with pg_databases("ecohub_eco", ("global",)) as prefix:
        engine = create_engine(f"{PG}/{prefix}_global")
        try:
            upgrade_engine("global_plane", engine, "0002")
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM markets")).scalar() == 91
                assert conn.execute(text("SELECT count(*) FROM categories")).scalar_one() >= 30
                profile = conn.execute(text("SELECT cert_profile FROM markets WHERE code = 'GB'")).scalar_one()
                assert {"UKCA", "PSTI"} <= set(profile)
                assert conn.execute(text("SELECT cell FROM markets WHERE code = 'IN'")).scalar_one() == "in"
            upgrade_engine("global_plane", engine, "head")
            downgrade(engine, "global_plane", "0001")
            with engine.connect() as conn:
                assert conn.execute(text("SELECT to_regclass('markets')")).scalar() is None
        finally:
            engine.dispose()
