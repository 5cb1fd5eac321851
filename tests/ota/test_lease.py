"""The OTA engine's lease: one holder at a time, taken over once it expired, given up on a clean stop; its table's
migration (global 0008) on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from ecohub.bootstrap import Services
from ecohub.ota.lease import Lease, lease_name
from ecohub.schema import metadata_for
from ecohub.store.migrate import upgrade_engine
from tests.migrations import PG, downgrade, pg_databases


def test_one_holder_until_the_lease_expires_or_is_released(services: Services) -> None:
    name = lease_name(["us", "eu"])
    assert name == "ota-engine:eu,us"
    a, b = Lease(services.dbs, name, ttl_s=0.3), Lease(services.dbs, name, ttl_s=0.3)
    assert a.acquire() and not b.acquire()
    assert a.acquire()  # renewing
    assert a.holder_now() == a.holder
    time.sleep(0.4)  # a stopped renewing (it died): b takes over
    assert b.acquire() and not a.acquire()
    b.release()
    assert b.holder_now() is None and a.acquire()


def _roundtrip(url: str) -> None:
    engine = create_engine(url)
    upgrade_engine("global_plane", engine)
    assert "ota_engine_leases" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                 metadata_for("global_plane"))
    assert [d for d in diffs if "ota_engine_leases" in repr(d)] == []
    downgrade(engine, "global_plane", "0007")
    assert "ota_engine_leases" not in inspect(engine).get_table_names()
    upgrade_engine("global_plane", engine)
    assert "ota_engine_leases" in inspect(engine).get_table_names()
    engine.dispose()


def test_lease_migration_on_sqlite(tmp_path: Path) -> None:
    _roundtrip(f"sqlite:///{tmp_path / 'global.db'}")


@pytest.mark.postgres
def test_lease_migration_on_postgres() -> None:
    with pg_databases("ecohub_otalease", ("global",)) as prefix:
        _roundtrip(f"{PG}/{prefix}_global")
