"""The same migrations and the same ingest path on PostgreSQL (one database per plane and cell)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.hub import free_port, running_hub
from ecohub.sdk.device import Device
from ecohub.settings import Settings
from tests.conftest import load_spec, postgres_reachable
from tests.helpers import DEFINITION, eventually
from tests.migrations import PG, pg_databases

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")]
CELLS = ["eu", "us"]


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    """Throwaway databases: one for the global plane, one per cell; dropped afterwards."""
    with pg_databases("ecohub_t", ["global", *CELLS]) as prefix:
        yield Settings(data_dir=tmp_path / "data", cells=CELLS, default_cell="eu",
                       database={"url": f"{PG}/{prefix}_global", "cell_url_template": f"{PG}/{prefix}_{{cell}}"})


@pytest.fixture
def pg_services(pg_settings: Settings) -> Iterator[Services]:
    svc = bootstrap(pg_settings)
    yield svc
    svc.close()


def test_migrations_create_every_table(pg_services: Services) -> None:
    from ecohub.schema import metadata_for

    global_tables = set(inspect(pg_services.dbs.global_engine).get_table_names())
    assert set(metadata_for("global_plane").tables) <= global_tables
    for engine in pg_services.dbs.cell_engines.values():
        assert set(metadata_for("cell").tables) <= set(inspect(engine).get_table_names())
    # running them again is a no-op
    from ecohub.store.migrate import upgrade_all

    upgrade_all(pg_services.dbs)


async def test_ingest_and_commands_on_postgres(pg_services: Services) -> None:
    model = "cuco.plug.v3"
    pg_services.products.import_spec(load_spec(model), model=model, actor="test", **DEFINITION)
    creds = pg_services.devices.provision(model=model, cell="us")[0]
    async with running_hub(pg_services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()) as hub:
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(model), port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        try:
            for v in (1, 2, 3):
                dev.report({(11, 1): v})
            dev.publish_raw(f"ecohub/{creds.did}/up", b"{bad")
            await eventually(lambda: hub.twin.get("us", creds.did)["properties"].get("11.1", {}).get("value") == 3)
            assert [s["value"] for s in hub.telemetry.series("us", creds.did, "11.1")] == [1, 2, 3]
            await eventually(lambda: hub.dead_letters.list(cell="us"))
            assert hub.dead_letters.list(cell="us")[0]["code"] == "bad_json"
            assert hub.twin.get("us", creds.did)["online"] is True
        finally:
            await dev.disconnect()
    # nothing of this device leaked into the other cell
    with pg_services.dbs.cell_session("eu") as s:
        assert s.execute(text("select count(*) from telemetry")).scalar() == 0
