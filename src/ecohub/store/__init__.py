"""Database engines (the global plane and one database per region cell), sessions, migrations."""

from ecohub.store.db import CellBase, Databases, GlobalBase, JsonType, aware, now_ms, utcnow

__all__ = ["CellBase", "Databases", "GlobalBase", "JsonType", "aware", "now_ms", "utcnow"]
