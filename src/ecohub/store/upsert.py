"""INSERT … ON CONFLICT for SQLite and PostgreSQL with one call (both dialects share the syntax); raw hot inserts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
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


class RawStatement:
    """A statement compiled once per dialect and run with `exec_driver_sql`: the rows go to the DB-API cursor's
    executemany as they are, without SQLAlchemy's per-row parameter processing (the hot path's inserts).

    The SQL is SQLAlchemy's own rendering of `build(insert)`, so both dialects keep the statement's semantics;
    what SQLAlchemy's types would do per value, the caller does: JSON columns come as JSON text (`json_text`),
    booleans and bytes as they are. Errors are SQLAlchemy's (`OperationalError` for an outage, …)."""

    def __init__(self, build: Callable[[Callable[[Any], Any]], Any], columns: Sequence[str]) -> None:
        self.build = build
        self.columns = list(columns)
        self._sql: dict[str, str] = {}

    def sql(self, session: Session) -> str:
        """The statement as the session's dialect runs it (named parameters `:col` / `%(col)s`)."""
        name = session.get_bind().dialect.name
        text = self._sql.get(name)
        if text is None:
            dialect = sqlite.dialect(paramstyle="named") if name == "sqlite" else session.get_bind().dialect
            text = str(self.build(lambda table: _insert(session, table)).compile(dialect=dialect,
                                                                                  column_keys=self.columns))
            if " RETURNING " in text:
                raise NotImplementedError("a RawStatement runs as executemany and returns no rows")
            self._sql[name] = text
        return text

    def run(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """executemany of `rows` (dicts keyed by `columns`) inside the session's transaction."""
        if rows:
            session.connection().exec_driver_sql(self.sql(session), list(rows))  # type: ignore[arg-type]


_json = msgspec.json.Encoder().encode


def json_text(value: Any) -> str:
    """A JSON column's value as SQLAlchemy's JSON type would bind it (None is JSON null, not SQL NULL)."""
    return _json(value).decode()


def insert_new_rows(session: Session, table: Any, rows: Sequence[tuple[Any, ...]], *, columns: Sequence[str],
                    keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """`insert_new` for tuples on the DB-API cursor: insert rows (in `columns` order), skipping those whose `keys`
    exist; returns the `keys` of the rows inserted. One statement per chunk: multi-row VALUES on SQLite, arrays
    through `unnest` on PostgreSQL."""
    if not rows:
        return []
    conn = session.connection()
    name = conn.dialect.name
    cols, key_cols = ", ".join(columns), ", ".join(keys)
    tail = f"ON CONFLICT ({key_cols}) DO NOTHING RETURNING {key_cols}"
    out: list[tuple[Any, ...]] = []
    if name == "postgresql":
        types = [table.c[c].type.compile(dialect=conn.dialect) for c in columns]
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        sql = f"INSERT INTO {table.name} ({cols}) SELECT * FROM unnest({arrays}) {tail}"
        params = tuple(list(col) for col in zip(*rows, strict=True))
        out += [tuple(r) for r in conn.exec_driver_sql(sql, params).all()]
        return out
    if name != "sqlite":
        raise NotImplementedError(f"no insert_new_rows for dialect {name}")
    width = len(columns)
    one = "(" + ", ".join("?" * width) + ")"
    step = max(1, SQLITE_MAX_PARAMS // width)
    for i in range(0, len(rows), step):
        part = rows[i:i + step]
        sql = f"INSERT INTO {table.name} ({cols}) VALUES {', '.join([one] * len(part))} {tail}"
        flat = tuple(v for r in part for v in r)
        out += [tuple(r) for r in conn.exec_driver_sql(sql, flat).all()]
    return out


SQLITE_MAX_PARAMS = 999 * 8  # parameters per statement (SQLite ≥ 3.32 allows 32766; stay well below)
