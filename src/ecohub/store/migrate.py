"""Run the Alembic migrations of the global plane and of every cell (the same scripts on SQLite and PostgreSQL)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from ecohub.store.db import Databases

MIGRATIONS = Path(__file__).parent / "migrations"
PLANES = ("global_plane", "cell")
MIGRATION_LOCK_KEY = 0x6563_6F68  # "ecoh": the advisory lock all ecohub processes migrate under


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """SQLite: an exclusive lock file next to the database while migrating it."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def alembic_config(plane: str, engine: Engine | None = None) -> Config:
    """An Alembic config for one plane; with an engine, env.py runs on its connection."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / plane))
    cfg.attributes["plane"] = plane
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
        cfg.attributes["engine"] = engine
    return cfg


def upgrade_engine(plane: str, engine: Engine, revision: str = "head") -> None:
    """Bring one database to `revision`; concurrent processes (API, workers) take turns, never race."""
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        cfg = alembic_config(plane, engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def upgrade_all(dbs: Databases) -> None:
    """Migrate the global plane and every cell to head."""
    upgrade_engine("global_plane", dbs.global_engine)
    for engine in dbs.cell_engines.values():
        upgrade_engine("cell", engine)
