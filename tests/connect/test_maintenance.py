"""The hub's scheduled job: the dedup inbox forgets old entries on its own window; telemetry rolls up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from ecohub.bootstrap import Services
from ecohub.connect.models import InboxEntry
from ecohub.settings import Settings
from ecohub.store import now_ms
from ecohub.telemetry.models import Rollup
from tests.connect.test_ingest import _device
from tests.helpers import eventually, migrated


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A hub whose maintenance job runs every 0.3 s."""
    return Settings(data_dir=migrated(tmp_path), telemetry={"job_interval_s": 0.3})


async def test_the_job_prunes_the_inbox_and_keeps_what_redeliveries_need(hub: Services, plug_model: str) -> None:
    two_days_ago = now_ms() - 2 * 86_400_000
    with hub.dbs.cell_session("eu") as s:
        s.execute(insert(InboxEntry), [{"did": "eu-00000000000000aa", "msg_id": i, "digest": i,
                                        "received_ms": two_days_ago} for i in range(30)])
    dev = await _device(hub, plug_model)
    try:
        dev.report({(11, 1): 5})
        cell = hub.devices.cell_of(dev.did)

        def inbox() -> tuple[int, int]:
            with hub.dbs.cell_session(cell) as s:
                old = s.scalar(select(func.count()).select_from(InboxEntry)
                               .where(InboxEntry.did == "eu-00000000000000aa"))
                new = s.scalar(select(func.count()).select_from(InboxEntry).where(InboxEntry.did == dev.did))
            return int(old or 0), int(new or 0)

        await eventually(lambda: inbox() == (0, 1), timeout=10)  # the old 30 are gone, today's entry stays
        # and the same job rolled today's sample up into the hourly aggregates

        def rolled() -> int:
            with hub.dbs.cell_session(cell) as s:
                return int(s.scalar(select(func.count()).select_from(Rollup).where(Rollup.did == dev.did)) or 0)

        await eventually(lambda: rolled() >= 1, timeout=10)
    finally:
        await dev.disconnect()
