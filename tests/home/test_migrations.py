"""Cell migration 0002 (accounts, homes, sharing, bindings) on SQLite and PostgreSQL: up, down, up, and in use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ecohub.auth import Principal, Role
from ecohub.bootstrap import bootstrap
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.helpers import DEFINITION
from tests.migrations import PG, pg_databases, roundtrip

HOME_TABLES = {"users", "user_tokens", "homes", "rooms", "home_members", "bindings", "bind_codes"}


def test_cell_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, HOME_TABLES, down_to="0001")
    engine.dispose()


@pytest.fixture
def pg_names() -> Iterator[str]:
    """Throwaway PostgreSQL databases (global + eu + us), dropped afterwards; → their name prefix."""
    with pg_databases("ecohub_home", ("global", "eu", "us")) as prefix:
        yield prefix


@pytest.mark.postgres
def test_cell_migration_and_accounts_on_postgres(pg_names: str, tmp_path: Path) -> None:
    prefix = pg_names
    engine = create_engine(f"{PG}/{prefix}_us")
    roundtrip(engine, HOME_TABLES, down_to="0001")
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
        svc.products.import_spec(load_spec("cuco.plug.v3"), model="cuco.plug.v3", actor="test", **DEFINITION)
        dev = svc.devices.provision(model="cuco.plug.v3", cell="eu")[0]
        home_id = home.homes.create(p, "PG home")["home_id"]
        home.bindings.claim(p, home_id, did=dev.did, code=dev.bind_code)
        assert [d["did"] for d in home.devices.of_user(p)] == [dev.did]
        home.accounts.logout(token)
    finally:
        svc.close()
