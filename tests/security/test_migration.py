"""Cell migration 0014 (desired-state delivery columns, the security audit's tables) on SQLite and PostgreSQL; on
PostgreSQL also the desired-value claim under concurrency (one of two racing claimers gets the values)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.orm import Session

from ecohub.bootstrap import bootstrap
from ecohub.schema import metadata_for
from ecohub.settings import Settings
from ecohub.twin.service import TwinService
from tests.migrations import PG, pg_databases, roundtrip

TABLES = {"security_connects", "security_findings", "security_vulnerable_firmware", "security_firmware_seen"}
DESIRED = {"desired_state", "desired_code", "desired_cmd", "desired_seq", "desired_sent_ms"}


def _check(engine: Engine) -> None:
    roundtrip(engine, TABLES, down_to="0010", kept=frozenset({"twin_properties"}))
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata_for("cell"))
    assert [d for d in diffs if "twin_properties" in repr(d)] == []
    assert {c["name"] for c in inspect(engine).get_columns("twin_properties")} >= DESIRED


def test_roundtrip_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    _check(engine)
    engine.dispose()


@pytest.fixture
def pg_prefix() -> Iterator[str]:
    """Throwaway PostgreSQL databases (global + eu), dropped afterwards."""
    with pg_databases("ecohub_security", ("global", "eu")) as prefix:
        yield prefix


@pytest.mark.postgres
def test_on_postgres_and_one_claimer_wins(pg_prefix: str, tmp_path: Path) -> None:
    engine = create_engine(f"{PG}/{pg_prefix}_eu")
    _check(engine)
    engine.dispose()
    settings = Settings(data_dir=tmp_path / "data", cells=["eu"], default_cell="eu",
                        database={"url": f"{PG}/{pg_prefix}_global", "cell_url_template": f"{PG}/{pg_prefix}_{{cell}}"})
    svc = bootstrap(settings)
    try:
        did = "eu-00000000000000d1"
        with svc.dbs.cell_session("eu") as s:
            TwinService.apply_online(s, {did: (False, 1, 1, None)})
            TwinService.set_desired(s, did, {"2.1": True, "2.2": 5}, 10, order=1)
        start = threading.Barrier(2)
        got: dict[int, list[tuple[str, object]]] = {}

        def claim(command_id: int) -> None:
            with svc.dbs.cell_session("eu") as s:
                assert isinstance(s, Session)
                start.wait()
                got[command_id] = TwinService.claim_pending(s, did, command_id, 20)

        threads = [threading.Thread(target=claim, args=(n,)) for n in (101, 102)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(len(v) for v in got.values()) == [0, 2]
        assert svc.security.service.audit()["checks"] >= 7
    finally:
        svc.close()
