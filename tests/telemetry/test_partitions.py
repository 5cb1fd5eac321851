"""PostgreSQL: telemetry and device events partitioned by day; migration 0011 converts a populated database,
retention drops whole expired partitions (and only those), the CLI makes and lists them; SQLite keeps one table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, select, text
from typer.testing import CliRunner

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.cli.app import app
from ecohub.schema import metadata_for
from ecohub.settings import Settings
from ecohub.store import now_ms
from ecohub.store.alembic_env import skip_partitions
from ecohub.store.migrate import upgrade_engine
from ecohub.telemetry.domain import DAY
from ecohub.telemetry.models import DeviceEvent, Sample
from ecohub.telemetry.partitions import name_of
from tests.conftest import load_spec, postgres_reachable
from tests.helpers import DEFINITION
from tests.migrations import PG, downgrade, pg_databases
from tests.telemetry.conftest import write

pg_only = [pytest.mark.postgres,
           pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")]
TODAY = now_ms() // DAY * DAY


@pytest.fixture(autouse=True)
def _today() -> None:
    """Partitions are named by the real UTC date: a run that crosses midnight takes the day each test starts in
    (TODAY taken once at import made three tests of a CI run that started at 23:30 expect yesterday's names)."""
    global TODAY
    TODAY = now_ms() // DAY * DAY


def children(engine: Engine, table: str) -> set[str]:
    """The partitions PostgreSQL lists for `table` (pg_inherits)."""
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                     "WHERE i.inhparent = CAST(:t AS regclass)"), {"t": table}).scalars())


def partitioned(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT CAST(partrelid AS regclass)::text FROM pg_partitioned_table")).scalars())


def rows_of(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


@pytest.mark.postgres
def test_migration_0011_partitions_a_populated_table() -> None:
    with pg_databases("ecohub_tp", ["cell"]) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        try:
            upgrade_engine("cell", engine, "0010")
            days = [40, 3, 2, 0]  # days before today with samples; plus one stamped 1970 by a broken clock
            with engine.begin() as conn:
                for i, d in enumerate(days):
                    for j in range(5):
                        conn.execute(text("INSERT INTO telemetry (did, key, ts, value, msg_id) VALUES "
                                          "(:did, '2.1', :ts, CAST(:v AS jsonb), :m)"),
                                     {"did": f"eu-{j}", "ts": TODAY - d * DAY + j * 1000, "v": str(i * 10 + j),
                                      "m": j})
                    conn.execute(text("INSERT INTO device_events (did, siid, eiid, arguments, ts, msg_id) VALUES "
                                      "('eu-0', 2, 1, CAST('{\"2.1\": 1}' AS jsonb), :ts, 1)"),
                                 {"ts": TODAY - d * DAY + 5})
                conn.execute(text("INSERT INTO telemetry (did, key, ts, value, msg_id) VALUES "
                                  "('eu-0', '2.1', 5, CAST('1' AS jsonb), 9)"))
            before = {t: rows_of(engine, t) for t in ("telemetry", "device_events")}
            assert partitioned(engine) == set()

            upgrade_engine("cell", engine, "0011")
            assert partitioned(engine) >= {"telemetry", "device_events"}
            for table in ("telemetry", "device_events"):
                assert rows_of(engine, table) == before[table]  # every row, same ids and values
                want = {name_of(table, TODAY - d * DAY) for d in days} | {
                    name_of(table, TODAY + a * DAY) for a in range(8)} | {f"{table}_default"}
                assert children(engine, table) == want
            with engine.connect() as conn:
                assert conn.execute(text("SELECT ts FROM telemetry_default")).scalars().all() == [5]
                old = name_of("telemetry", TODAY - 40 * DAY)
                assert conn.execute(text(f"SELECT count(*) FROM {old}")).scalar() == 5
                # the id sequence goes on where it was
                new = conn.execute(text("INSERT INTO telemetry (did, key, ts, msg_id) VALUES ('eu-0', '2.1', :ts, 1) "
                                        "RETURNING id"), {"ts": TODAY}).scalar()
                assert new == max(r[0] for r in before["telemetry"]) + 1
                conn.rollback()
            upgrade_engine("cell", engine)  # the later revisions too, so the whole cell schema is compared
            with engine.connect() as conn:
                # models and migrations agree (the partitions are not in the models)
                opts = {"compare_type": True, "include_name": skip_partitions(conn)}
                assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata_for("cell")) == []

            downgrade(engine, "cell", "0010")  # and back: one table each, the same rows
            assert partitioned(engine) == set()
            for table in ("telemetry", "device_events"):
                assert rows_of(engine, table) == before[table]
        finally:
            engine.dispose()


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Services]:
    """Hub services on fresh PostgreSQL databases (migrated to head: partitioned), default raw retention 20 days."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with pg_databases("ecohub_tpr", ["global", "eu"]) as prefix:
        db = {"url": f"{PG}/{prefix}_global", "cell_url_template": f"{PG}/{prefix}_{{cell}}"}
        svc = bootstrap(Settings(data_dir=tmp_path / "pg", cells=["eu"], default_cell="eu", database=db,
                                 telemetry={"retention_days": 20, "prune_batch": 3}))
        yield svc
        svc.close()


def _count(svc: Services, model: Any, did: str) -> int:
    with svc.dbs.cell_session("eu") as s:
        return int(s.scalar(select(func.count()).select_from(model).where(model.did == did)) or 0)


@pytest.mark.postgres
def test_retention_drops_partitions_past_the_longest_retention(pg: Services) -> None:
    engine = pg.dbs.cell_engines["eu"]
    for model in ("short.plug.v1", "long.plug.v1"):
        pg.products.import_spec(load_spec("cuco.plug.v3"), model=model, actor="test", **DEFINITION)
    short = pg.devices.provision(model="short.plug.v1", cell="eu")[0].did
    long_ = pg.devices.provision(model="long.plug.v1", cell="eu")[0].did
    pg.telemetry.set_retention("short.plug.v1", raw_days=10)
    pg.telemetry.set_retention("long.plug.v1", raw_days=30)  # the longest rule: the default is 20 days
    ages = [45, 35, 25, 15, 5, 1]
    for did in (short, long_):
        write(pg, did, "11.2", [(TODAY - a * DAY + 3600_000, float(a)) for a in ages])
        with pg.dbs.cell_session("eu") as s:
            pg.telemetry.append(s, [], [{"did": did, "siid": 2, "eiid": 1, "arguments": {}, "ts": TODAY - a * DAY,
                                         "msg_id": a} for a in ages], {})
    # the migration made today's and the next 7 days' partitions; the past days had none: their rows went to
    # the default partition, and making those days moves them
    assert [p for p in pg.telemetry.partitions_of(ahead=7) if p["made"]] == []
    made = pg.telemetry.partitions.ensure("eu", now_ms=TODAY, since_ms=TODAY - 50 * DAY)
    assert len(made) == 2 * 50
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM telemetry_default")).scalar() == 0
        assert conn.execute(text(f"SELECT count(*) FROM {name_of('telemetry', TODAY - 45 * DAY)}")).scalar() == 2

    report = pg.telemetry.maintain(now_ms=TODAY + 2 * 3600_000)["eu"]
    gone = {name_of(t, TODAY - d * DAY) for t in ("telemetry", "device_events") for d in range(31, 51)}
    assert {p["partition"] for p in report["dropped"]["partitions"]} == gone  # older than 30 days, nothing else
    for table in ("telemetry", "device_events"):
        left = children(engine, table)
        assert not gone & left
        assert name_of(table, TODAY - 30 * DAY) in left and f"{table}_default" in left
    # rows of the shorter rule in newer partitions went in batches; the long product keeps its 30 days
    with pg.dbs.cell_session("eu") as s:
        def ages_of(did: str) -> list[float]:
            return list(s.scalars(select(Sample.value).where(Sample.did == did).order_by(Sample.ts)))
        assert ages_of(short) == [5.0, 1.0]
        assert ages_of(long_) == [25.0, 15.0, 5.0, 1.0]
    assert _count(pg, DeviceEvent, short) == 2 and _count(pg, DeviceEvent, long_) == 4
    dropped = report["dropped"]
    assert (dropped["telemetry"], dropped["device_events"]) == (4 + 2, 4 + 2)  # 4 in partitions, 2 by DELETE
    again = pg.telemetry.maintain(now_ms=TODAY + 2 * 3600_000)["eu"]["dropped"]
    assert (again["telemetry"], again["device_events"], again["partitions"]) == (0, 0, [])


@pytest.mark.postgres
def test_erasure_removes_rows_in_every_partition(pg: Services) -> None:
    from tests.home.conftest import PASSWORD, signup

    pg.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test", partner_id="acme",
                            **DEFINITION)
    device = pg.devices.provision(model="acme.plug.v1", cell="eu")[0]
    with TestClient(create_app(pg)) as client:
        ann = signup(client, "ann@example.org")
        home = client.post("/api/v1/homes", json={"name": "Home"}, headers=ann["headers"]).json()["home_id"]
        r = client.post(f"/api/v1/homes/{home}/devices", json={"did": device.did, "bind_code": device.bind_code},
                        headers=ann["headers"])
        assert r.status_code == 201, r.text
        t = now_ms() + 1
        # today's partition, tomorrow's, and the default (a clock far ahead): all sealed with Ann's key
        write(pg, device.did, "11.2", [(t, 1.0), (t + DAY, 2.0), (t + 400 * DAY, 3.0)])
        with pg.dbs.cell_engines["eu"].connect() as conn:
            where = {r[0] for r in conn.execute(text("SELECT tableoid::regclass::text FROM telemetry"))}
        assert len(where) == 3 and "telemetry_default" in where
        r = client.delete("/api/v1/privacy/me", headers={**ann["headers"], "X-Password": PASSWORD})
        assert r.status_code == 202, r.text
    assert _count(pg, Sample, device.did) == 0


@pytest.mark.postgres
def test_cli_makes_and_lists_partitions(pg: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOHUB_DATA_DIR", str(pg.settings.data_dir))
    monkeypatch.setenv("ECOHUB_CELLS", '["eu"]')
    monkeypatch.setenv("ECOHUB_DEFAULT_CELL", "eu")
    monkeypatch.setenv("ECOHUB_DATABASE__URL", pg.settings.database.url or "")
    monkeypatch.setenv("ECOHUB_DATABASE__CELL_URL_TEMPLATE", pg.settings.database.cell_url_template or "")
    r = CliRunner().invoke(app, ["telemetry", "partitions", "--ahead", "10", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    new = {row["partition"] for row in rows if row["made"]}
    assert new == {name_of(t, TODAY + a * DAY) for t in ("telemetry", "device_events") for a in (8, 9, 10)}
    assert {row["partition"] for row in rows} == new | {name_of(t, TODAY + a * DAY) for t in
                                                        ("telemetry", "device_events") for a in range(8)} | {
        "telemetry_default", "device_events_default"}
    assert CliRunner().invoke(app, ["telemetry", "partitions", "--ahead", "400"]).exit_code != 0
    # the hub's job makes the days from its "today" to 7 days ahead (the missed day 11 stays in the default)
    made = pg.telemetry.maintain(now_ms=TODAY + 12 * DAY + 1)["eu"]["partitions_made"]
    assert {p["partition"] for p in made} == {name_of(t, TODAY + a * DAY) for t in ("telemetry", "device_events")
                                              for a in range(12, 20)}


@pytest.mark.postgres
def test_a_partition_that_cannot_get_its_lock_waits_for_the_next_run(pg: Services) -> None:
    day = TODAY + 10 * DAY
    with pg.dbs.cell_engines["eu"].connect() as other:
        other.execute(text("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE"))  # a long query holds the table
        made = pg.telemetry.partitions.ensure("eu", now_ms=day, ahead=0)
        assert [p.name for p in made] == [name_of("device_events", day)]  # telemetry's gave up after 2 s
        other.rollback()
    assert [p.name for p in pg.telemetry.partitions.ensure("eu", now_ms=day, ahead=0)] == [name_of("telemetry", day)]


def test_sqlite_keeps_one_table(services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert services.telemetry.partitions_of(ahead=3) == []
    assert "partitions" not in services.telemetry.maintain()["eu"]["dropped"]
    monkeypatch.setenv("ECOHUB_DATA_DIR", str(services.settings.data_dir))
    r = CliRunner().invoke(app, ["telemetry", "partitions"])
    assert r.exit_code == 0 and "SQLite keeps one table" in r.output
