"""Shared body of both planes' Alembic env.py: picks the plane's metadata and runs online."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ecohub.store.db import plane_metadata


def run(plane: str) -> None:
    """Run migrations for `plane` on the connection given by the runner (or the configured URL)."""
    config = context.config
    target = plane_metadata(plane)
    connection = config.attributes.get("connection")
    render_as_batch = True  # SQLite needs batch mode for ALTERs; harmless on PostgreSQL
    if connection is not None:
        context.configure(connection=connection, target_metadata=target, render_as_batch=render_as_batch,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target, render_as_batch=render_as_batch,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
