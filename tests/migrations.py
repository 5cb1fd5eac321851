"""Shared by the migration tests: a model-checked up/down/up round trip, and throwaway PostgreSQL databases."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from ecohub.schema import metadata_for
from ecohub.settings import Settings
from ecohub.store.alembic_env import skip_partitions
from ecohub.store.migrate import alembic_config, upgrade_engine
from tests.conftest import postgres_reachable

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def downgrade(engine: Engine, plane: str, revision: str) -> None:
    """Run the plane's migrations down to `revision` on `engine`."""
    with engine.begin() as conn:
        cfg = alembic_config(plane, engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def roundtrip(engine: Engine, tables: set[str], *, up_to: str = "head", down_to: str,
              kept: frozenset[str] = frozenset(), plane: str = "cell") -> None:
    """Upgrade `plane` to `up_to`; `tables` exist and match their models; downgrade to `down_to` removes them (and
    keeps the earlier `kept` ones); upgrading to head brings them back."""
    upgrade_engine(plane, engine, up_to)
    assert set(inspect(engine).get_table_names()) >= tables
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": skip_partitions(conn)}
        diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata_for(plane))
    ours = [d for d in diffs if any(t in repr(d) for t in tables)]
    assert ours == [], f"models and migrations disagree: {ours}"
    downgrade(engine, plane, down_to)
    left = set(inspect(engine).get_table_names())
    assert not tables & left and kept <= left
    upgrade_engine(plane, engine)
    assert set(inspect(engine).get_table_names()) >= tables


def column_roundtrip(engine: Engine, table: str, column: str, *, down_to: str, plane: str = "cell") -> None:
    """Upgrade `plane` to head: `table` has `column` and matches its model; downgrade to `down_to` drops the column
    (the table stays); upgrading again brings it back."""
    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(table)}

    upgrade_engine(plane, engine)
    assert column in columns()
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": skip_partitions(conn)}
        diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata_for(plane))
    ours = [d for d in diffs if table in repr(d)]
    assert ours == [], f"models and migrations disagree: {ours}"
    downgrade(engine, plane, down_to)
    assert table in inspect(engine).get_table_names() and column not in columns()
    upgrade_engine(plane, engine)
    assert column in columns()


def global_roundtrip(url: str, tables: set[str], *, down_to: str) -> None:
    """`roundtrip` of the global plane on a database at `url`."""
    engine = create_engine(url)
    try:
        roundtrip(engine, tables, down_to=down_to, plane="global_plane")
    finally:
        engine.dispose()


@contextmanager
def pg_databases(prefix: str, suffixes: Sequence[str]) -> Iterator[str]:
    """Create `{prefix}_{random}_{suffix}` databases (skip the test without PostgreSQL); → the name prefix.
    They are dropped afterwards."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"{prefix}_{secrets.token_hex(4)}"
    names = [f"{name}_{s}" for s in suffixes]
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'CREATE DATABASE "{n}"'))
        yield name
    finally:
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def pg_settings(tmp_path: Path, prefix: str, **extra: Any) -> Iterator[Settings]:
    """Settings of a hub whose global plane and its one cell (eu) live in throwaway PostgreSQL databases."""
    with pg_databases(prefix, ["global", "eu"]) as name:
        yield Settings(data_dir=tmp_path / "data", cells=["eu"], default_cell="eu",
                       database={"url": f"{PG}/{name}_global", "cell_url_template": f"{PG}/{name}_{{cell}}"}, **extra)
