"""The OTA engine's lease: one holder at a time, taken over once it expired, given up on a clean stop; its table's
migration (global 0008) on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ecohub.bootstrap import Services
from ecohub.ota.lease import Lease, lease_name
from tests.migrations import PG, global_roundtrip, pg_databases


def test_one_holder_until_the_lease_expires_or_is_released(services: Services) -> None:
    name = lease_name(["us", "eu"])
    assert name == "ota-engine:eu,us"
    # long enough that a loaded CI machine gets from acquire to the checks within it (0.3 s did not, once)
    a, b = Lease(services.dbs, name, ttl_s=3.0), Lease(services.dbs, name, ttl_s=3.0)
    assert a.acquire() and not b.acquire()
    assert a.acquire()  # renewing
    assert a.holder_now() == a.holder
    time.sleep(3.2)  # a stopped renewing (it died): b takes over
    assert b.acquire() and not a.acquire()
    b.release()
    assert b.holder_now() is None and a.acquire()


def test_lease_migration_on_sqlite(tmp_path: Path) -> None:
    global_roundtrip(f"sqlite:///{tmp_path / 'global.db'}", {"ota_engine_leases"}, down_to="0007")


@pytest.mark.postgres
def test_lease_migration_on_postgres() -> None:
    with pg_databases("ecohub_otalease", ("global",)) as prefix:
        global_roundtrip(f"{PG}/{prefix}_global", {"ota_engine_leases"}, down_to="0007")
