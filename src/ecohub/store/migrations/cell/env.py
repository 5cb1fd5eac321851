"""Alembic env for the cell plane."""

from ecohub.store.alembic_env import run

run("cell")
