"""Cell migration 0002 (accounts, homes, sharing, bindings) on SQLite and PostgreSQL: up, down, up, and in use."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from ecohub.bootstrap import bootstrap
from ecohub.home.domain import Principal, Role
from ecohub.settings import Settings
from ecohub.store.migrate import alembic_config, upgrade_engine
from ecohub.store.registry import metadata_for
from tests.conftest import load_spec, postgres_reachable

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
HOME_TABLES = {"users", "user_tokens", "homes", "rooms", "home_members", "bindings", "bind_codes"}


def _roundtrip(engine: Engine) -> None:
    from alembic import command

    upgrade_engine("cell", engine)
    assert set(inspect(engine).get_table_names()) >= HOME_TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                 metadata_for("cell"))
    ours = [d for d in diffs if any(t in repr(d) for t in HOME_TABLES)]
    assert ours == [], f"models and migration 0002 disagree: {ours}"
    with engine.begin() as conn:
        cfg = alembic_config("cell", engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert not HOME_TABLES & set(inspect(engine).get_table_names())
    upgrade_engine("cell", engine)
    assert set(inspect(engine).get_table_names()) >= HOME_TABLES


def test_cell_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    _roundtrip(engine)
    engine.dispose()


@pytest.fixture
def pg_names() -> Iterator[tuple[str, list[str]]]:
    """Throwaway PostgreSQL databases (global + eu + us), dropped afterwards."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    prefix = f"ecohub_home_{secrets.token_hex(4)}"
    names = [f"{prefix}_global", f"{prefix}_eu", f"{prefix}_us"]
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for n in names:
            conn.execute(text(f'CREATE DATABASE "{n}"'))
    yield prefix, names
    with admin.connect() as conn:
        for n in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_cell_migration_and_accounts_on_postgres(pg_names: tuple[str, list[str]], tmp_path: Path) -> None:
    prefix, _ = pg_names
    engine = create_engine(f"{PG}/{prefix}_us")
    _roundtrip(engine)
    engine.dispose()
    settings = Settings(data_dir=tmp_path / "data", cells=["eu", "us"], default_cell="eu",
                        database={"url": f"{PG}/{prefix}_global", "cell_url_template": f"{PG}/{prefix}_{{cell}}"})
    svc = bootstrap(settings)
    try:
        home = svc.home
        user = home.accounts.signup(email="pg@example.org", password="long enough password", country="AT")
        assert user["cell"] == "eu"
        token = home.accounts.signin(email="pg@example.org", password="long enough password")["access_token"]
        p = home.accounts.authenticate(token)
        assert p == Principal(Role.USER, user["user_id"], cell="eu")
        svc.products.import_spec(load_spec("cuco.plug.v3"), model="cuco.plug.v3", actor="test")
        dev = svc.devices.provision(model="cuco.plug.v3", cell="eu")[0]
        home_id = home.homes.create(p, "PG home")["home_id"]
        home.bindings.claim(p, home_id, did=dev.did, code=dev.bind_code)
        assert [d["did"] for d in home.devices.of_user(p)] == [dev.did]
        home.accounts.logout(token)
    finally:
        svc.close()
