"""The twin keeps the value that arrived last at the broker, within one ingest batch as across batches."""

from __future__ import annotations

from ecohub.bootstrap import Services
from ecohub.twin.service import TwinService


def _apply(services: Services, did: str, reports: list[tuple[str, object, int, int, int]]) -> None:
    with services.dbs.cell_session("eu") as s:
        TwinService.apply_reports(s, [(did, k, v, ts, m, seq) for k, v, ts, m, seq in reports], {did: 1}, 0, {})


def test_a_reboot_restarting_message_ids_updates_the_twin_at_once(services: Services) -> None:
    t0 = 1_800_000_000_000
    # one batch: message 500 before the reboot, then message 1 right after it (ids restarted, one second later)
    _apply(services, "eu-00000000000000a1", [("2.1", "before", t0, 500, 10), ("2.1", "after", t0 + 1000, 1, 11)])
    # two batches, the same two messages
    _apply(services, "eu-00000000000000a2", [("2.1", "before", t0, 500, 10)])
    _apply(services, "eu-00000000000000a2", [("2.1", "after", t0 + 1000, 1, 11)])
    for did in ("eu-00000000000000a1", "eu-00000000000000a2"):
        assert services.twin.get("eu", did)["properties"]["2.1"]["value"] == "after"


def test_an_older_arrival_committed_later_does_not_replace_a_newer_value(services: Services) -> None:
    t0 = 1_800_000_000_000
    # two workers: the one holding the later arrival (seq 21) commits first
    _apply(services, "eu-00000000000000a3", [("2.1", "new", t0 + 10, 8, 21)])
    _apply(services, "eu-00000000000000a3", [("2.1", "old", t0, 7, 20)])
    assert services.twin.get("eu", "eu-00000000000000a3")["properties"]["2.1"]["value"] == "new"
    # inside one batch, too
    _apply(services, "eu-00000000000000a4", [("2.1", "new", t0 + 10, 8, 21), ("2.1", "old", t0, 7, 20)])
    assert services.twin.get("eu", "eu-00000000000000a4")["properties"]["2.1"]["value"] == "new"
