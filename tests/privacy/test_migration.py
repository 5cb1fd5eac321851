"""Cell migration 0004 (privacy) on SQLite and PostgreSQL: up, down to 0003, up; then a consent, fleet and erasure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ecohub.auth import Principal, Role
from ecohub.bootstrap import bootstrap
from ecohub.settings import Settings
from ecohub.store.migrate import alembic_config
from tests.conftest import load_spec
from tests.helpers import DEFINITION
from tests.migrations import PG, pg_databases, roundtrip

TABLES = {"audit_log", "subject_keys", "consents", "dsr_requests", "dsr_steps", "partner_recipients", "partner_acks"}


def test_single_head_and_roundtrip_on_sqlite(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("cell"))
    heads = script.get_heads()
    assert len(heads) == 1  # one chain: privacy (0004) and everything after it
    assert "0004" in {rev.revision for rev in script.walk_revisions()}
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, TABLES, down_to="0003")
    engine.dispose()


@pytest.fixture
def pg_prefix() -> Iterator[str]:
    """Throwaway PostgreSQL databases (global + eu), dropped afterwards."""
    with pg_databases("ecohub_privacy", ("global", "eu")) as prefix:
        yield prefix


@pytest.mark.postgres
def test_privacy_on_postgres(pg_prefix: str, tmp_path: Path) -> None:
    engine = create_engine(f"{PG}/{pg_prefix}_eu")
    roundtrip(engine, TABLES, down_to="0003")
    engine.dispose()
    settings = Settings(data_dir=tmp_path / "data", cells=["eu"], default_cell="eu",
                        database={"url": f"{PG}/{pg_prefix}_global", "cell_url_template": f"{PG}/{pg_prefix}_{{cell}}"})
    svc = bootstrap(settings)
    try:
        user = svc.home.accounts.signup(email="pg@example.org", password="long enough password", country="AT")
        p = Principal(Role.USER, user["user_id"], cell="eu")
        assert svc.home.accounts.profile(p)["email"] == "pg@example.org"
        svc.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test",
                                 partner_id="acme", **DEFINITION)
        dev = svc.devices.provision(model="acme.plug.v1", cell="eu")[0]
        home_id = svc.home.homes.create(p, "PG home")["home_id"]
        svc.home.bindings.claim(p, home_id, did=dev.did, code=dev.bind_code)
        svc.privacy.consents.record("eu", user["user_id"], purpose="device_diagnostics_to_maker", given=True,
                                    text_version="1")
        feed = svc.privacy.partners.fleet(Principal(Role.PARTNER, "t", partner_id="acme"))
        assert len(feed["devices"]) == 1
        status, f = svc.privacy.dsr.export("eu", user["user_id"], actor="operator:t")
        f.close()
        assert status["status"] == "complete"
        erased = svc.privacy.dsr.erase("eu", user["user_id"], actor="operator:t")
        assert erased["steps"]["partner:acme"]["status"] == "pending" and erased["steps"]["users"]["deleted"] == 1
        assert svc.privacy.audit.verify("eu").ok
    finally:
        svc.close()
