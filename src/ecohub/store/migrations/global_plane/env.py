"""Alembic env for the global_plane plane."""

from ecohub.store.alembic_env import run

run("global_plane")
