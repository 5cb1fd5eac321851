"""One PostgreSQL URL → a database for the global plane and one per cell, created when missing."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ecohub.errors import ErrorCode, InvalidInput, Unavailable


def split_database_url(url: str) -> tuple[str, str]:
    """`postgresql+psycopg://u@h/ecohub` → (`…/ecohub`, `…/ecohub_{cell}`): the global plane and the cell template."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise InvalidInput(f"--database takes a PostgreSQL URL (postgresql+psycopg://…/NAME), got {url!r}",
                           code=ErrorCode.INVALID_DATABASE)
    if not parsed.database:
        raise InvalidInput("the database URL must name a database, e.g. …:5432/ecohub", code=ErrorCode.INVALID_DATABASE)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    template = parsed.set(database=f"{parsed.database}_CELL").render_as_string(hide_password=False)
    return parsed.render_as_string(hide_password=False), template.replace("_CELL", "_{cell}")


def ensure_databases(urls: list[str]) -> list[str]:
    """Create the PostgreSQL databases that do not exist yet; returns the names created."""
    created: list[str] = []
    for url in urls:
        parsed = make_url(url)
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                      {"n": parsed.database}).scalar()
                if not exists:
                    try:
                        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
                        created.append(str(parsed.database))
                    except DBAPIError as err:
                        # another ecohub process (API, ingest) created it a moment ago: that is fine
                        if "already exists" not in str(err):
                            raise
        except Exception as err:
            raise Unavailable(f"cannot reach PostgreSQL at {parsed.host}:{parsed.port or 5432}: {err}",
                              code=ErrorCode.DATABASE_UNAVAILABLE) from err
        finally:
            admin.dispose()
    return created
