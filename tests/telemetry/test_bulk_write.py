"""The ingest write path: COPY on PostgreSQL and one executemany on SQLite store the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ecohub.bootstrap import Services, bootstrap
from ecohub.settings import Settings
from ecohub.telemetry import service as telemetry_service
from ecohub.telemetry.models import Sample
from tests.conftest import postgres_reachable
from tests.migrations import PG, pg_databases

VALUES: list[Any] = [True, False, 0, -7, 2**40, 3.25, -0.5, "text ünïcode", None, {"a": [1, 2]}, [1, "x"]]


def rows(did: str) -> list[dict[str, Any]]:
    return [{"did": did, "key": f"2.{i % 3 + 1}", "ts": 1_767_225_600_000 + i, "value": VALUES[i % len(VALUES)],
             "msg_id": i} for i in range(50)]


def stored(services: Services) -> list[tuple[Any, ...]]:
    with services.dbs.cell_session("eu") as s:
        q = select(Sample.did, Sample.key, Sample.ts, Sample.value, Sample.msg_id, Sample.subject, Sample.sealed)
        return [tuple(r) for r in s.execute(q.order_by(Sample.did, Sample.ts))]


def write(services: Services, did: str) -> None:
    with services.dbs.cell_session("eu") as s:
        services.telemetry.append(s, rows(did), [], {})
        s.commit()


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Services]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with pg_databases("ecohub_tb", ["global", "eu"]) as prefix:
        db = {"url": f"{PG}/{prefix}_global", "cell_url_template": f"{PG}/{prefix}_{{cell}}"}
        svc = bootstrap(Settings(data_dir=tmp_path / "pg", cells=["eu"], default_cell="eu", database=db))
        yield svc
        svc.close()


@pytest.mark.postgres
def test_copy_and_executemany_store_identical_rows(pg: Services, services: Services,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[int] = []
    real_copy = telemetry_service._copy_samples
    monkeypatch.setattr(telemetry_service, "_copy_samples", lambda s, r: (copied.append(len(r)), real_copy(s, r)))
    write(pg, "eu-copy")  # 50 rows: COPY
    assert copied == [50]
    monkeypatch.setattr(telemetry_service, "COPY_MIN", 10**9)
    write(pg, "eu-many")  # the same rows through executemany
    write(services, "eu-lite")  # and on SQLite
    by_did: dict[str, list[tuple[Any, ...]]] = {}
    for r in stored(pg) + stored(services):
        by_did.setdefault(r[0], []).append(r[1:])
    assert len(by_did["eu-copy"]) == 50
    assert by_did["eu-copy"] == by_did["eu-many"] == by_did["eu-lite"]
    # and a reader sees the values as they were reported
    assert [s["value"] for s in pg.telemetry.series("eu", "eu-copy", "2.1", limit=100)] == \
        [r["value"] for r in rows("x") if r["key"] == "2.1"]
