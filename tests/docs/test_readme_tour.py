"""The README's 5-minute tour, run as written (the block between `<!-- tour:start -->` and `<!-- tour:end -->`) with
bash against a fresh data dir and free ports, checking what each step prints: the tour cannot drift from the code."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ecohub.hub import free_port
from ecohub.settings import Settings
from tests.conftest import postgres_reachable

ROOT = Path(__file__).resolve().parents[2]
STEP = re.compile(r"^# (\d+)\. ", re.MULTILINE)


def tour_block(name: str = "tour") -> str:
    """The bash code of a marked README block (the tour, or the production block)."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
    return block.split("```bash\n", 1)[1].split("```", 1)[0]


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """PATH with an `ecohub` of this checkout, a fresh data dir, free ports."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "ecohub").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ecohub.cli "$@"\n')
    (shim / "ecohub").chmod(0o755)
    return {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
            "ECOHUB_DATA_DIR": str(tmp_path / "tour"), "HTTP_PORT": str(free_port()), "MQTT_PORT": str(free_port()),
            **extra}


def _run_block(script: Path, env: dict[str, str]) -> tuple[int, str]:
    """bash SCRIPT in its own process group, killed at the end with whatever it left in the background."""
    proc = subprocess.Popen(["bash", str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=900)
    finally:  # the block's background hub and simulator, should a step have failed before the block stops them
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, output


def tour_script() -> str:
    """The tour with a marker echoed before each numbered step, stopping at the first command that fails."""
    lines = ["set -euo pipefail"]
    for line in tour_block().splitlines():
        if m := STEP.match(line):
            lines.append(f'echo "::step {m.group(1)}::"')
        lines.append(line)
    return "\n".join(lines) + "\n"


def _steps(output: str) -> dict[int, str]:
    parts = re.split(r"^::step (\d+)::$", output, flags=re.MULTILINE)
    return {int(n): text for n, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_tour_block_is_marked_and_numbered() -> None:
    numbers = [int(n) for n in STEP.findall(tour_block())]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 10
    assert "$HTTP_PORT" in tour_block() and "$MQTT_PORT" in tour_block()
    assert "> devices.json" not in tour_block()  # secrets go to the data dir, not the working tree


@pytest.mark.timeout(900)
@pytest.mark.skipif(not (shutil.which("mosquitto_pub") and shutil.which("curl")), reason="mosquitto-clients, curl")
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "tour.sh"
    script.write_text(tour_script())
    data = tmp_path / "tour"
    had_devices_json = (ROOT / "devices.json").exists()
    code, output = _run_block(script, _environment(tmp_path))
    steps = _steps(output)
    assert code == 0, f"the tour stopped in step {max(steps, default=-1)}:\n{output[-4000:]}"
    assert sorted(steps) == list(range(11))

    assert "data dir ready" in steps[0]
    assert "stage: certification" in steps[1] and '"to": "certification"' in steps[1]
    devices = json.loads((data / "devices.json").read_text())
    assert len(devices) == 3 and all(d["secret"] for d in devices)
    assert (ROOT / "devices.json").exists() == had_devices_json
    twin = json.loads(steps[5])
    assert twin["did"] == devices[0]["did"] and twin["online"] is True and len(twin["properties"]) > 10
    rest_twin, reply = (json.loads(line) for line in steps[6].strip().splitlines())
    assert rest_twin["did"] == twin["did"] and rest_twin["version"] >= twin["version"]
    assert reply["status"] == "replied" and reply["result"][0]["code"] == 0
    assert '"value": 1234,' in steps[7]  # the plain MQTT client's report reached the twin
    assert "1002" in steps[7] and "out_of_range" in steps[7]  # and the out-of-range one is a dead letter
    assert "PASSED" in steps[8] and "valid" in steps[8]
    assert "tables mapped" in steps[9] and "clean" in steps[9] and ": ok" in steps[9]
    assert steps[10].strip().endswith("stopped") and "Traceback" not in (data / "hub.log").read_text()


@pytest.mark.postgres
@pytest.mark.timeout(900)
@pytest.mark.skipif(not (postgres_reachable() and shutil.which("curl")), reason="PostgreSQL on 127.0.0.1:5432, curl")
def test_the_readme_production_block_runs_on_postgres(tmp_path: Path) -> None:
    """Every command of the block reads PostgreSQL (the demo loaded by one is seen by the others and the hub)."""
    name = f"ecohub_readme_{uuid.uuid4().hex[:8]}"
    pg = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    script = tmp_path / "production.sh"
    script.write_text("set -euo pipefail\n" + tour_block("production"))
    env = _environment(tmp_path, PG=pg)
    try:
        code, output = _run_block(script, env)
        assert code == 0, output[-4000:]
        kpi = json.loads((tmp_path / "tour" / "kpi.json").read_text())
        assert kpi  # the demo's ecosystem, read back from PostgreSQL
        assert "DE" in output and "clean" in output and ": ok" in output
        assert not (tmp_path / "tour" / "global.db").exists()  # nothing went to SQLite
    finally:
        _drop([name] + [f"{name}_{cell}" for cell in Settings().cells])


def _drop(names: list[str]) -> None:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for n in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
    finally:
        engine.dispose()
