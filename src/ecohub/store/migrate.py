"""Run the Alembic migrations of the global plane and of every cell (the same scripts on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from ecohub.store.db import Databases

MIGRATIONS = Path(__file__).parent / "migrations"
PLANES = ("global_plane", "cell")


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
    """Bring one database to `revision`."""
    with engine.begin() as conn:
        cfg = alembic_config(plane, engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def upgrade_all(dbs: Databases) -> None:
    """Migrate the global plane and every cell to head."""
    upgrade_engine("global_plane", dbs.global_engine)
    for engine in dbs.cell_engines.values():
        upgrade_engine("cell", engine)
