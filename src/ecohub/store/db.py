"""Engines and sessions for the global plane and each region cell; SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from ecohub.errors import ErrorCode, NotFound

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class GlobalBase(DeclarativeBase):
    """Tables of the global plane: non-personal data only (partners, products, specs, listings)."""

    metadata = MetaData(naming_convention=NAMING)


class CellBase(DeclarativeBase):
    """Tables that live in every region cell: users, devices, twins, telemetry and all derived data."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Timezone-aware now, the only clock services use for stored timestamps."""
    return datetime.now(UTC)


def aware(ts: datetime) -> datetime:
    """A stored timestamp as UTC-aware (SQLite hands `DateTime(timezone=True)` back without its zone)."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def now_ms() -> int:
    """Unix time in milliseconds (telemetry and twin timestamps)."""
    return time.time_ns() // 1_000_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine tuned for its backend; SQLite files get WAL so the CLI can read while the hub writes."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Databases:
    """The global plane engine and one engine per region cell, with a session factory for each."""

    def __init__(self, global_url: str, cell_urls: dict[str, str], *, echo: bool = False) -> None:
        self.global_engine = make_engine(global_url, echo=echo)
        self.cell_engines = {cell: make_engine(url, echo=echo) for cell, url in cell_urls.items()}
        self._global = sessionmaker(self.global_engine, expire_on_commit=False)
        self._cells = {cell: sessionmaker(e, expire_on_commit=False) for cell, e in self.cell_engines.items()}

    @property
    def cells(self) -> list[str]:
        """The configured region cells."""
        return list(self.cell_engines)

    def check_cell(self, cell: str) -> str:
        """Return the cell name if it is configured, else raise NotFound naming the known cells."""
        if cell not in self._cells:
            raise NotFound(f"unknown region cell {cell!r} (this hub serves {', '.join(self._cells)})",
                           code=ErrorCode.UNKNOWN_CELL)
        return cell

    @contextmanager
    def global_session(self) -> Iterator[Session]:
        """A unit of work on the global plane: commit on success, roll back on error."""
        with self._global() as session, session.begin():
            yield session

    @contextmanager
    def cell_session(self, cell: str) -> Iterator[Session]:
        """A unit of work on one cell's database."""
        self.check_cell(cell)
        with self._cells[cell]() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pool."""
        self.global_engine.dispose()
        for engine in self.cell_engines.values():
            engine.dispose()


def plane_metadata(plane: str) -> MetaData:
    """The metadata of a plane as far as its models are imported (the composition root imports them all)."""
    return GlobalBase.metadata if plane == "global_plane" else CellBase.metadata
