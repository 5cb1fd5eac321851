"""Shell completion of resource names (models, dids, partners, cells) read from the data dir."""

from __future__ import annotations

from ecohub.bootstrap import bootstrap
from ecohub.settings import Settings

LIMIT = 1000  # a shell menu longer than this helps nobody


def names(kind: str, settings: Settings) -> list[str]:
    """The names of one kind of resource in the data dir of `settings`."""
    if kind == "cell":
        return list(settings.cells)
    services = bootstrap(settings)
    try:
        if kind == "model":
            return [p.model for p in services.products.list(limit=LIMIT)]
        if kind == "did":
            return [d.did for d in services.devices.list(limit=LIMIT)]
        if kind == "partner":
            return [str(p["id"]) for p in services.ecosystem.partners.list(limit=LIMIT)]
        return []
    finally:
        services.close()
