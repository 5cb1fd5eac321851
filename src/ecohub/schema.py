"""The complete schema of each plane: imports every context's models (composition layer; Alembic checks use it)."""

from __future__ import annotations

from sqlalchemy import MetaData

import ecohub.apps.models
import ecohub.automate.models
import ecohub.certify.models
import ecohub.connect.models
import ecohub.ecosystem.models
import ecohub.home.models
import ecohub.notify.models
import ecohub.ota.models
import ecohub.privacy.models
import ecohub.security.models
import ecohub.telemetry.models
import ecohub.twin.models  # noqa: F401
from ecohub.store.db import plane_metadata


def metadata_for(plane: str) -> MetaData:
    """The complete metadata of a plane (`global_plane` or `cell`), every context's tables included."""
    return plane_metadata(plane)
