"""The ingest write path on PostgreSQL (inbox through unnest, twin upserts and telemetry COPY on the DB-API cursor):
the same device-visible behaviour as on SQLite, with the same tests run against a hub on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecohub.settings import Settings
from tests.connect.test_ingest import (  # noqa: F401  (collected here again, on PostgreSQL)
    test_a_rebooted_device_reusing_ids_updates_the_twin_and_keeps_both_samples,
    test_bad_messages_are_dead_lettered_and_good_values_kept,
    test_redelivered_message_is_stored_once,
    test_sdk_device_reports_reach_twin_and_telemetry,
)
from tests.migrations import pg_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a hub whose global plane and cell live in throwaway PostgreSQL databases."""
    with pg_settings(tmp_path, "ecohub_ingest") as settings:
        yield settings
