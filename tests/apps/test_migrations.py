"""Migrations of the developer platform: global 0007 (apps) and cell 0015 (grants, codes, tokens, push queue), checked
against the models at head (0021 adds the webhooks' batch_max)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.migrations import PG, global_roundtrip, pg_databases, roundtrip

CELL_TABLES = {"app_grants", "app_grant_devices", "app_auth_codes", "app_tokens", "app_webhooks",
               "app_webhook_deliveries"}


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, CELL_TABLES, down_to="0010", kept=frozenset({"users", "bindings"}))
    engine.dispose()
    global_roundtrip(f"sqlite:///{tmp_path / 'global.db'}", {"apps"}, down_to="0003")


@pytest.mark.postgres
def test_migrations_on_postgres() -> None:
    with pg_databases("ecohub_apps", ("cell", "global")) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        roundtrip(engine, CELL_TABLES, down_to="0010", kept=frozenset({"users", "bindings"}))
        engine.dispose()
        global_roundtrip(f"{PG}/{prefix}_global", {"apps"}, down_to="0003")
