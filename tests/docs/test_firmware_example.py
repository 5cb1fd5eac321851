"""docs/examples/firmware.py, the partner guide's firmware, really runs: commands reach it, it passes certification."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.certify.runner import RunOptions
from tests.certify.conftest import TEST_TIMING, declaration, hub_with, under_test
from tests.conftest import load_spec
from tests.helpers import DEFINITION, eventually

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "firmware.py"
SPEC = "yeelink.light.spot2"  # the light spec the example's power-on state is written for
MODEL = "acme.light.spot1"


def _firmware() -> ModuleType:
    spec = importlib.util.spec_from_file_location("partner_firmware", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_answers_commands_and_reports(api: httpx.AsyncClient, hub: Services) -> None:
    hub.products.import_spec(load_spec(SPEC), model=MODEL, actor="test", partner_id="acme", **DEFINITION)
    unit = hub.devices.provision(model=MODEL)[0]
    light = _firmware().Light(did=unit.did, secret=unit.secret, spec=load_spec(SPEC), port=hub.runtime.mqtt_port or 0)
    await light.connect()
    try:
        cell = hub.devices.cell_of(unit.did)
        await eventually(lambda: hub.twin.get(cell, unit.did)["properties"].get("2.2", {}).get("value") == 80)
        r = await api.post(f"/api/v1/devices/{unit.did}/commands",
                           json={"method": "set_properties", "params": [{"siid": 2, "piid": 2, "value": 35}]})
        assert r.status_code == 200, r.text
        assert r.json()["result"] == [{"siid": 2, "piid": 2, "code": 0}]
        await eventually(lambda: hub.twin.get(cell, unit.did)["properties"]["2.2"]["value"] == 35)
        r = await api.post(f"/api/v1/devices/{unit.did}/commands",
                           json={"method": "get_properties", "params": [{"siid": 1, "piid": 3}]})
        assert r.json()["result"] == [{"siid": 1, "piid": 3, "code": 0, "value": unit.did}]
    finally:
        await light.disconnect()


@pytest.mark.timeout(240)
async def test_the_example_passes_certification(tmp_path: Path) -> None:
    """What the guide promises: `ecohub certify run --device-cmd "python docs/examples/firmware.py"` passes."""
    async with hub_with(tmp_path, []) as hub:
        hub.products.import_spec(load_spec(SPEC), model=MODEL, actor="test", partner_id="acme", **DEFINITION)
        cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(EXAMPLE))}"
        options = RunOptions(model=MODEL, device_cmd=cmd, declaration=declaration(), timing=TEST_TIMING)
        report = await hub.certification.run(under_test(hub), options)
    failed = {c["id"]: c["reason"] for c in report["checks"] if c["status"] not in ("pass", "na")}
    assert not failed, failed
    assert report["passed"] is True
    reconnect = {c["id"]: c for c in report["checks"]}["connect.reconnect"]
    assert reconnect["evidence"]["method"] == "session_takeover"  # the suite drops the unit; it must come back
