"""The certification suite's OTA checks against real simulator processes: a healthy unit passes them, an updater
that installs what nobody it trusts signed fails exactly `ota.refuses_bad_signature`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecohub.certify.devproc import sdk_device_cmd
from ecohub.certify.runner import RunOptions
from tests.certify.conftest import TEST_TIMING, declaration, hub_with, under_test

OTA_CHECKS = ("ota.firmware_version", "ota.refuses_bad_signature")


async def _ota_results(tmp_path: Path, fault: str | None) -> dict[str, dict]:
    async with hub_with(tmp_path, ["cuco.plug.v3"]) as hub:
        options = RunOptions(model="cuco.plug.v3", declaration=declaration(), timing=TEST_TIMING,
                             device_cmd=sdk_device_cmd(fault=fault))
        report = await hub.certification.run(under_test(hub), options)
    return {c["id"]: c for c in report["checks"] if c["id"] in OTA_CHECKS}


@pytest.mark.timeout(240)
async def test_healthy_unit_refuses_a_badly_signed_image(tmp_path: Path) -> None:
    checks = await _ota_results(tmp_path, None)
    assert {k: c["status"] for k, c in checks.items()} == dict.fromkeys(OTA_CHECKS, "pass"), checks
    refused = checks["ota.refuses_bad_signature"]
    assert "-4023" in refused["reason"] and "without downloading it" in refused["reason"]
    assert refused["evidence"]["progress"][-1] == {"version": "999.0.0", "state": "failed", "progress": 0,
                                                   "code": -4023, "message": "the partner signature does not verify"}
    assert checks["ota.firmware_version"]["reason"].endswith("runs firmware 1.0.0")


@pytest.mark.timeout(240)
async def test_updater_that_skips_signatures_is_caught(tmp_path: Path) -> None:
    checks = await _ota_results(tmp_path, "ota-bad-signature")
    assert checks["ota.firmware_version"]["status"] == "pass"
    refused = checks["ota.refuses_bad_signature"]
    assert refused["status"] == "fail", refused
    assert refused["reason"] == "the unit installed an image whose signatures do not verify"
    assert refused["evidence"]["downloads"]  # it fetched the image the suite served
