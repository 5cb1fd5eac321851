"""The `ecohub` CLI as users run it: real processes on a real data dir, next to a running hub."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from ecohub.bootstrap import Services
from ecohub.hub import free_port
from tests.conftest import SPECS
from tests.helpers import eventually

ECOHUB = [sys.executable, "-m", "ecohub.cli"]


def run(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess."""
    env = {**os.environ, "ECOHUB_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    proc = subprocess.run([*ECOHUB, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    return proc


def test_spec_import_provision_and_list(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("init", data_dir=data)
    proc = run("spec", "import", str(SPECS / "cuco.plug.v3.json"), "--model", "acme.plug.v1", data_dir=data,
               check=False)
    # the bare import (DESIGN's stable form) creates the product and stops at `defined`, naming what is missing
    assert proc.returncode == 0, proc.stderr
    assert "stays at defined" in proc.stdout
    assert "category, target_markets, target_price, forecast_volume" in proc.stdout
    proc = run("spec", "import", str(SPECS / "cuco.plug.v3.json"), "--model", "acme.plug.v1", "--stage",
               "certification", data_dir=data, check=False)
    assert proc.returncode == 5 and "missing: category, target_markets, target_price, forecast_volume" in proc.stderr
    out = run("spec", "import", str(SPECS / "cuco.plug.v3.json"), "--model", "acme.plug.v1", "--category", "plug",
              "--market", "DE", "--market", "US", "--price", "19.90", "--forecast", "10000", "--json", data_dir=data)
    product = json.loads(out.stdout)
    assert product["model"] == "acme.plug.v1" and product["stage"] == "certification" and product["properties"] > 10
    out = run("device", "provision", "--model", "acme.plug.v1", "--count", "3", "--json", data_dir=data)
    devices = json.loads(out.stdout)
    assert len(devices) == 3 and set(devices[0]) >= {"did", "secret", "bind_code", "model"}
    listed = json.loads(run("product", "list", "--json", data_dir=data).stdout)
    assert [p["model"] for p in listed] == ["acme.plug.v1"]
    twin = json.loads(run("device", "twin", devices[0]["did"], "--json", data_dir=data).stdout)
    assert twin == {**twin, "online": False, "properties": {}, "version": 0}


def test_spec_import_reports_problems_with_paths(tmp_path: Path) -> None:
    doc = json.loads((SPECS / "zhimi.airp.rmb1.json").read_text())
    doc["services"][1]["properties"][0]["format"] = "decimal"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    run("init", data_dir=tmp_path / "d")
    proc = run("spec", "import", str(bad), "--model", "acme.airp.v1", data_dir=tmp_path / "d", check=False)
    assert proc.returncode == 7  # invalid input (2 is Click's usage error)
    assert "services[1].properties[0].format: unknown format 'decimal'" in proc.stderr
    proc = run("spec", "import", str(tmp_path / "missing.json"), "--model", "acme.airp.v1", data_dir=tmp_path / "d",
               check=False)
    assert proc.returncode == 7 and "no such file" in proc.stderr


def test_token_create_json(tmp_path: Path) -> None:
    run("init", data_dir=tmp_path / "d")
    out = json.loads(run("token", "create", "--role", "operator", "--json", data_dir=tmp_path / "d").stdout)
    assert out["token"].startswith("eht_") and out["role"] == "operator"
    proc = run("token", "create", "--role", "king", data_dir=tmp_path / "d", check=False)
    assert proc.returncode == 7 and "unknown role" in proc.stderr


async def test_simulate_runs_devices_against_a_running_hub(hub: Services, plug_model: str) -> None:
    """`ecohub simulate` is a separate real process: it finds the hub via the data dir and connects N devices."""
    env = {**os.environ, "ECOHUB_DATA_DIR": str(hub.settings.data_dir)}
    proc = await asyncio.create_subprocess_exec(
        *ECOHUB, "simulate", "--model", plug_model, "--devices", "4", "--rate", "5", "--duration", "3",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "devices connected 4/4" in out.decode()
    devices = hub.devices.list(model=plug_model)
    assert len(devices) == 4
    for d in devices:
        twin = await eventually(lambda d=d: hub.twin.get(d.cell, d.did)["properties"])
        assert twin
    assert hub.dead_letters.list() == []


def test_up_serves_api_and_broker(tmp_path: Path) -> None:
    """`ecohub up` as a user starts it: a process with the API and the embedded broker on the given ports."""
    data = tmp_path / "d"
    http, mqtt = free_port(), free_port()
    env = {**os.environ, "ECOHUB_DATA_DIR": str(data)}
    proc = subprocess.Popen([*ECOHUB, "up", "--http-port", str(http), "--mqtt-port", str(mqtt)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            try:
                r = httpx.get(f"http://127.0.0.1:{http}/api/v1/health", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            asyncio.run(asyncio.sleep(0.1))
        assert r.json()["status"] == "ok"
        runtime = json.loads((data / "hub.json").read_text())
        assert runtime["mqtt"]["port"] == mqtt
        spec = httpx.get(f"http://127.0.0.1:{http}/api/v1/openapi.json").json()
        assert "/api/v1/devices/{did}/twin" in spec["paths"]
        busy = run("up", "--http-port", str(http), "--mqtt-port", str(mqtt), data_dir=tmp_path / "e", check=False)
        assert busy.returncode == 6 and "in use" in busy.stderr
    finally:
        proc.terminate()  # SIGTERM, as a service manager stops it
        code = proc.wait(15)
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0 and "Traceback" not in output and output.rstrip().endswith("stopped"), output
    assert not (data / "hub.json").exists()
