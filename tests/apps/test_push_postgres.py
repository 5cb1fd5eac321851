"""The push queue on PostgreSQL (payloads bound as JSON text and cast to JSONB, claims with SKIP LOCKED, deletes and
retries by id lists): the same subscriber-visible behaviour as on SQLite, the same tests run on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecohub.settings import Settings
from tests.apps.test_push_batch import (  # noqa: F401  (collected here again, on PostgreSQL)
    queueing,
    test_a_batch_carries_up_to_batch_max_events_in_created_order,
    test_a_failing_batch_goes_to_the_dead_letters_message_by_message,
    test_every_event_arrives_once_across_an_outage,
    test_without_batch_max_each_message_is_its_own_post,
)
from tests.apps.test_push_queue import (  # noqa: F401
    test_retries_end_in_dead_letters_and_long_failure_disables,
    test_two_delivering_processes_send_each_message_once,
)
from tests.migrations import pg_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """A hub whose global plane and cell live in throwaway PostgreSQL databases; webhooks to this machine allowed."""
    with pg_settings(tmp_path, "ecohub_push", webhooks={"allow_private": True}) as settings:
        yield settings
