"""The suite against real simulator processes: healthy devices of four real specs pass; each fault is caught by
exactly the checks it breaks. (The SDK simulator runs as `python -m ecohub.sdk.simulator`, the same fleet and faults
as `ecohub simulate` with a tenth of the start-up time; test_cli runs the default `ecohub simulate` path.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from ecohub.certify.devproc import sdk_device_cmd
from ecohub.certify.runner import RunOptions
from ecohub.sdk.faults import FAULTS
from tests.certify.conftest import TEST_TIMING, declaration, hub_with, record_evidence, under_test

CONCURRENT_RUNS = 4
# twelve full runs share the module fixture; the first test waits for it
pytestmark = pytest.mark.timeout(360)

HEALTHY = ["cuco.plug.v3", "zhimi.airp.rmb1", "xiaomi.sensor_ht.new3pr", "yeelink.light.spot2"]
FAULT_MODEL = "cuco.plug.v3"  # writable properties, an action and events: every fault has something to break
REFUSALS = {"writes.refused_out_of_range", "writes.refused_wrong_type", "writes.refused_not_writable"}
EXPECTED_FAILURES: dict[str, set[str]] = {
    # bad values are dead-lettered when reported, and get_properties returns them too
    "out-of-range": {"properties.reported", "properties.get"},
    "wrong-type": {"properties.reported", "properties.get"},
    # nothing answers: every request-based check fails, including the request after the reconnect
    "no-reply": {"properties.get", "properties.set_roundtrip", "actions.answer", "connect.reconnect",
                 "ota.refuses_bad_signature", *REFUSALS},
    # acknowledges every set with code 0, valid or not, and changes nothing
    "ignores-set": {"properties.set_roundtrip", *REFUSALS},
    "wrong-event-args": {"events.arguments"},
    "foreign-topic": {"security.no_foreign_attempts"},
    "shared-secret": {"security.unique_credentials"},
    # stays offline once its connection is dropped; killed while offline, it has no will to send
    "no-reconnect": {"connect.reconnect", "state.offline_will"},
    # installs an image nobody it trusts signed
    "ota-bad-signature": {"ota.refuses_bad_signature"},
    # faults of a real update (a corrupted download, a failing flash, a fall-back to the old image) need an image
    # the unit trusts, which the suite cannot sign: campaigns catch them (tests/ota/test_campaigns.py), so the
    # suite does not run them
    "ota-bad-hash": set(),
    "ota-install-fails": set(),
    "ota-reverts": set(),
}


def _failed(report: dict[str, Any]) -> set[str]:
    return {c["id"] for c in report["checks"] if c["status"] not in ("pass", "na")}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every healthy model and every fault, each against its own hub and device process, a few at a time.

    One hub per run, as a partner's lab runs it: each run reads its own hub's refusal log and audit, and no run's
    take-overs and kills reach another's units.
    """
    caught = [f for f in FAULTS if EXPECTED_FAILURES[f]]  # the campaign-only faults are run by tests/ota
    slowest_first = sorted(caught, key=lambda f: f != "no-reply")  # it waits out every command timeout
    runs = {f"fault:{f}": RunOptions(model=FAULT_MODEL, declaration=declaration(), timing=TEST_TIMING,
                                     device_cmd=sdk_device_cmd(fault=f)) for f in slowest_first}
    runs |= {f"healthy:{m}": RunOptions(model=m, declaration=declaration(), timing=TEST_TIMING,
                                        device_cmd=sdk_device_cmd()) for m in HEALTHY}
    gate = asyncio.Semaphore(CONCURRENT_RUNS)

    async def run(name: str, options: RunOptions) -> dict[str, Any]:
        async with gate, hub_with(tmp_path_factory.mktemp("certify"), [options.model]) as hub:
            report = await hub.certification.run(under_test(hub), options)
            if name == "healthy:yeelink.light.spot2":  # the gate is asked while the hub's records exist
                spec_hash = hub.products.compiled(options.model).hash
                bare = sorted(hub.certification.passing_markets(options.model, spec_hash))
                record_evidence(hub, options.model, ["DE", "GB", "US", "CN", "IN"])
                report["_gate"] = {"without_evidence": bare,
                                   "certification": sorted(hub.certification.passing_markets(options.model,
                                                                                            spec_hash)),
                                   "products": sorted(hub.products.passed_markets(options.model, spec_hash)),
                                   "recorded": [r["report_id"] for r in hub.certification.list(options.model)]}
            return report

    done = await asyncio.gather(*[run(n, o) for n, o in runs.items()])
    return dict(zip(runs, done, strict=True))


def test_every_fault_has_an_expectation() -> None:
    assert set(EXPECTED_FAILURES) == set(FAULTS)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("model", HEALTHY)
async def test_healthy_simulator_passes(reports: dict[str, dict[str, Any]], model: str) -> None:
    report = reports[f"healthy:{model}"]
    assert _failed(report) == set(), [(c["id"], c["reason"]) for c in report["checks"] if c["status"] == "fail"]
    assert report["passed"] is True
    assert all(m["passed"] for m in report["markets"])
    assert report["signature"]["alg"] == "Ed25519"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("fault", sorted(f for f, checks in EXPECTED_FAILURES.items() if checks))
async def test_fault_is_caught_by_exactly_its_checks(reports: dict[str, dict[str, Any]], fault: str) -> None:
    report = reports[f"fault:{fault}"]
    assert _failed(report) == EXPECTED_FAILURES[fault], {c["id"]: c["reason"] for c in report["checks"]
                                                          if c["status"] not in ("pass", "na")}
    assert all(c["status"] == "fail" for c in report["checks"] if c["id"] in EXPECTED_FAILURES[fault]), {
        c["id"]: (c["status"], c["reason"]) for c in report["checks"] if c["id"] in EXPECTED_FAILURES[fault]}
    assert report["passed"] is False


@pytest.mark.asyncio(loop_scope="module")
async def test_passing_report_is_recorded_and_opens_the_gate(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["healthy:yeelink.light.spot2"]
    gate = report["_gate"]
    assert gate["recorded"] == [report["report_id"]]
    assert gate["without_evidence"] == []  # the wire alone opens no market: every profile names a regime
    assert {"DE", "GB", "US", "CN", "IN"} <= set(gate["certification"])
    assert gate["products"] == gate["certification"]


@pytest.mark.asyncio(loop_scope="module")
async def test_reconnect_is_proven_by_a_session_takeover(reports: dict[str, dict[str, Any]]) -> None:
    """The suite drops the unit by connecting with its own client id and credentials (any hub, nothing but MQTT):
    the unit must come back, answer, and the hub's command path must reach it again."""
    healthy = reports["healthy:cuco.plug.v3"]
    check = {c["id"]: c for c in healthy["checks"]}["connect.reconnect"]
    assert check["status"] == "pass" and "session take-over" in check["reason"]
    evidence = check["evidence"]
    assert evidence["method"] == "session_takeover"
    assert evidence["hub"]["command_answered"] is True and evidence["hub"]["twin_online"] is True  # the hub recovered
    assert healthy["setup"]["reconnect_method"].startswith("session take-over")
    failed = {c["id"]: c for c in reports["fault:no-reconnect"]["checks"]}["connect.reconnect"]
    assert failed["status"] == "fail" and failed["evidence"]["method"] == "session_takeover"
    assert "after the connection was dropped" in failed["reason"]


@pytest.mark.asyncio(loop_scope="module")
async def test_evidence_names_what_the_device_did(reports: dict[str, dict[str, Any]]) -> None:
    checks = {c["id"]: c for c in reports["fault:foreign-topic"]["checks"]}
    attempts = checks["security.no_foreign_attempts"]["evidence"]["attempts"]
    assert {a["action"] for a in attempts} == {"publish", "subscribe"}
    refused = {c["id"]: c for c in reports["healthy:cuco.plug.v3"]["checks"]}["writes.refused_out_of_range"]
    assert {c["code"] for c in refused["evidence"]["cases"].values()} == {-4006}
    iso = {c["id"]: c for c in reports["healthy:cuco.plug.v3"]["checks"]}["security.broker_isolation"]
    assert iso["evidence"]["subscribe_other_down_suback"] == [0x80]
