"""Imports every context's models so each plane's metadata is complete (for Alembic and checks)."""

from __future__ import annotations

from sqlalchemy import MetaData


def metadata_for(plane: str) -> MetaData:
    """The complete metadata of a plane."""
    import ecohub.automate.models
    import ecohub.certify.models
    import ecohub.connect.models
    import ecohub.ecosystem.models
    import ecohub.home.models
    import ecohub.privacy.models
    import ecohub.telemetry.models
    import ecohub.twin.models  # noqa: F401
    from ecohub.store.db import CellBase, GlobalBase

    return GlobalBase.metadata if plane == "global_plane" else CellBase.metadata
