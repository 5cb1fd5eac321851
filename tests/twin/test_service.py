"""The twin keeps the device's latest value by the same rule within one ingest batch as across batches."""

from __future__ import annotations

from ecohub.bootstrap import Services
from ecohub.twin.service import REBOOT_GAP_MS, TwinService


def _apply(services: Services, did: str, reports: list[tuple[str, object, int, int]]) -> None:
    with services.dbs.cell_session("eu") as s:
        TwinService.apply_reports(s, [(did, k, v, ts, m) for k, v, ts, m in reports], {did: 1}, 0, {})


def test_a_reboot_inside_one_batch_wins_as_it_does_across_batches(services: Services) -> None:
    t0 = 1_800_000_000_000
    after_reboot = t0 + REBOOT_GAP_MS + 1
    # one batch: message 500 before the reboot, then message 1 after it (ids restarted)
    _apply(services, "eu-00000000000000a1", [("2.1", "before", t0, 500), ("2.1", "after", after_reboot, 1)])
    # two batches, the same two messages
    _apply(services, "eu-00000000000000a2", [("2.1", "before", t0, 500)])
    _apply(services, "eu-00000000000000a2", [("2.1", "after", after_reboot, 1)])
    for did in ("eu-00000000000000a1", "eu-00000000000000a2"):
        assert services.twin.get("eu", did)["properties"]["2.1"]["value"] == "after"
    # and within the minute, the device's order wins: a lower id does not replace a higher one
    _apply(services, "eu-00000000000000a3", [("2.1", "new", t0, 7), ("2.1", "late", t0 + 10, 6)])
    assert services.twin.get("eu", "eu-00000000000000a3")["properties"]["2.1"]["value"] == "new"
