"""INSERT … ON CONFLICT for SQLite and PostgreSQL with one call (both dialects share the syntax)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: Any) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {name}")


def upsert(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    update: dict[str, Any],
    where: ColumnElement[bool] | Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert rows; on key conflict apply `update` (expressions may use `excluded`) when `where` holds."""
    if not rows:
        return
    # executemany with a cached statement: SQLAlchemy batches it ("insertmanyvalues") without recompiling
    # a statement with thousands of bind parameters per batch.
    stmt = _insert(session, table)
    resolved = {k: (v(stmt.excluded) if callable(v) else v) for k, v in update.items()}
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=resolved,
                                               where=where(stmt.excluded) if callable(where) else where), list(rows))


def insert_new(session: Session, table: Any, rows: Sequence[dict[str, Any]], *, keys: Sequence[str],
               returning: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Insert rows, skipping those whose key exists; return `returning` columns of the rows inserted."""
    if not rows:
        return []
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(keys))
    return [tuple(r) for r in session.execute(stmt.returning(*returning), list(rows)).all()]
