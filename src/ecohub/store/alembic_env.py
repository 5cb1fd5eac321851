"""Shared body of both planes' Alembic env.py: picks the plane's metadata and runs online."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, text

from ecohub.store.db import plane_metadata


def skip_partitions(conn: Connection) -> Callable[..., bool]:
    """An `include_name` hook leaving PostgreSQL partitions out of autogenerate: the models declare the parent
    (e.g. `telemetry`), the day partitions are made at run time (migration 0011, the maintenance job)."""
    parts: set[str] = set()
    if conn.dialect.name == "postgresql":
        parts = set(conn.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars())

    def include_name(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
        return not (type_ == "table" and name in parts)
    return include_name


def run(plane: str) -> None:
    """Run migrations for `plane` on the connection given by the runner (or the configured URL)."""
    config = context.config
    target = plane_metadata(plane)
    connection = config.attributes.get("connection")
    render_as_batch = True  # SQLite needs batch mode for ALTERs; harmless on PostgreSQL
    if connection is not None:
        context.configure(connection=connection, target_metadata=target, render_as_batch=render_as_batch,
                          compare_type=True, include_name=skip_partitions(connection))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target, render_as_batch=render_as_batch,
                          compare_type=True, include_name=skip_partitions(conn))
        with context.begin_transaction():
            context.run_migrations()
