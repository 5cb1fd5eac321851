"""What every `ecohub` command does alike: version, help panels, data-dir checks, exit codes, paging, default cell,
shell completion, a clean stop on SIGTERM. Real processes on real data dirs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import httpx

from ecohub.cli.app import PANELS, app
from ecohub.hub import free_port
from tests.cli.test_cli import ECOHUB, run
from tests.conftest import SPECS

DEFINED = ("--category", "plug", "--market", "DE", "--price", "19.90", "--forecast", "10000")


def _complete(data_dir: Path, *words: str) -> list[str]:
    """What bash completion offers for the last word (Typer's completion protocol, as the shell runs it)."""
    env = {**os.environ, "ECOHUB_DATA_DIR": str(data_dir), "_ECOHUB_COMPLETE": "complete_bash",
           "COMP_WORDS": " ".join(["ecohub", *words]), "COMP_CWORD": str(len(words))}
    proc = subprocess.run(ECOHUB, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_version_and_help_panels(tmp_path: Path) -> None:
    out = run("--version", data_dir=tmp_path / "none")
    assert out.stdout.strip() == f"ecohub {version('ecohub')}"
    text = run("--help", data_dir=tmp_path / "none").stdout
    panels = [text.index(f"─ {panel} ") for panel in ("hub", "ecosystem", "devices", "certification", "privacy")]
    assert panels == sorted(panels)
    assert "Commands ─" not in text  # nothing left in the catch-all panel
    assert "7 invalid input" in text and "2 usage error" in text  # the exit-code table
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert [n for n in names if n not in PANELS] == []


def test_a_missing_or_file_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    typo = tmp_path / "tpyo"
    proc = run("product", "list", data_dir=typo, check=False)
    assert proc.returncode == 3 and "no data dir at" in proc.stderr and "ecohub init" in proc.stderr
    assert not typo.exists()  # nothing was created
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    for args in (("product", "list"), ("up",), ("init",)):
        proc = run(*args, data_dir=a_file, check=False)
        assert proc.returncode == 7, (args, proc.stderr)
        assert "is a file, not a directory" in proc.stderr and "Traceback" not in proc.stderr
    assert "data dir ready" in run("init", data_dir=typo).stdout
    assert json.loads(run("product", "list", "--json", data_dir=typo).stdout) == []


def test_usage_errors_and_invalid_input_exit_differently(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("init", data_dir=data)
    assert run("product", "list", "--no-such-option", data_dir=data, check=False).returncode == 2
    assert run("token", "create", data_dir=data, check=False).returncode == 2  # --role missing
    refused = run("token", "create", "--role", "king", data_dir=data, check=False)
    assert refused.returncode == 7 and "unknown role" in refused.stderr
    assert run("product", "show", "nope.plug.v1", data_dir=data, check=False).returncode == 3


def test_lists_say_when_they_stop_at_the_limit_and_page(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("init", data_dir=data)
    for model in ("acme.plug.v1", "acme.plug.v2", "acme.plug.v3"):
        run("spec", "import", str(SPECS / "cuco.plug.v3.json"), "--model", model, *DEFINED, data_dir=data)
    first = run("product", "list", "--limit", "2", "--json", data_dir=data)
    assert [p["model"] for p in json.loads(first.stdout)] == ["acme.plug.v1", "acme.plug.v2"]
    assert "showing 1 to 2 of 3; more exist" in first.stderr and "--offset 2" in first.stderr
    rest = run("product", "list", "--limit", "2", "--offset", "2", "--json", data_dir=data)
    assert [p["model"] for p in json.loads(rest.stdout)] == ["acme.plug.v3"] and "more exist" not in rest.stderr
    everything = run("product", "list", "--all", "--limit", "1", "--json", data_dir=data)
    assert len(json.loads(everything.stdout)) == 3 and everything.stderr == ""
    run("device", "provision", "--model", "acme.plug.v1", "--count", "3", data_dir=data)
    devices = run("device", "list", "--limit", "2", "--json", data_dir=data)
    assert len(json.loads(devices.stdout)) == 2 and "more exist" in devices.stderr
    assert len(json.loads(run("device", "list", "--all", "--json", data_dir=data).stdout)) == 3


def test_privacy_requests_and_audit_log_use_the_default_cell(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("init", data_dir=data)
    assert json.loads(run("privacy", "requests", "--json", data_dir=data).stdout) == []
    assert json.loads(run("audit", "log", "--json", data_dir=data).stdout) == []
    wrong = run("audit", "log", "--cell", "mars", data_dir=data, check=False)
    assert wrong.returncode == 3 and "mars" in wrong.stderr  # an unknown cell is not found


def test_residency_report_is_a_table(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("init", data_dir=data)
    out = run("residency", "report", data_dir=data).stdout
    assert "subjects per cell" in out and "bound_devices" in out and "{'" not in out


def test_shell_completion_of_models_dids_and_partners(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("init", data_dir=data)
    run("partner", "add", "Acme Labs", "--country", "DE", "--founded", "2015-01-01", "--id", "acme", data_dir=data)
    for model in ("acme.plug.v1", "acme.plug.v2"):
        run("spec", "import", str(SPECS / "cuco.plug.v3.json"), "--model", model, *DEFINED, "--partner", "acme",
            data_dir=data)
    dids = [d["did"] for d in json.loads(run("device", "provision", "--model", "acme.plug.v1", "--count", "2",
                                              "--json", data_dir=data).stdout)]
    assert _complete(data, "product", "show", "acme.plug") == ["acme.plug.v1", "acme.plug.v2"]
    assert _complete(data, "simulate", "--model", "acme.plug.v2") == ["acme.plug.v2"]
    assert sorted(_complete(data, "device", "twin", "")) == sorted(dids)
    assert _complete(data, "partner", "show", "ac") == ["acme"]
    assert _complete(tmp_path / "nothing-here", "product", "show", "") == []  # no data dir: no menu, no error


def test_sigterm_stops_the_demo_cleanly_and_its_curl_line_is_whole(tmp_path: Path) -> None:
    """The demo with its simulated fleet, stopped as a service manager stops it: exit 0, no traceback, no gmqtt
    'TRYING WRITE TO CLOSED SOCKET'; printed into a pipe, the curl line is one line."""
    http, mqtt = free_port(), free_port()
    env = {**os.environ, "ECOHUB_DATA_DIR": str(tmp_path / "d"), "COLUMNS": "80"}
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*ECOHUB, "demo", "--devices", "3", "--rate", "5", "--http-port", str(http),
                                 "--mqtt-port", str(mqtt)], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while "Ctrl-C stops" not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            token = next(line.split()[-1] for line in log.read_text().splitlines() if "operator token:" in line)
            headers = {"Authorization": f"Bearer {token}"}
            while not any(d.get("online") for d in _twins(http, headers)):  # the fleet is connected
                assert time.monotonic() < deadline
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert "Traceback" not in text and "TRYING WRITE" not in text and "ERROR" not in text, text[-3000:]
    assert text.rstrip().endswith("stopped")
    curl = next(line for line in text.splitlines() if "try: curl" in line)
    assert curl.rstrip().endswith("/twin") and len(curl) > 80


def _twins(http: int, headers: dict[str, str]) -> list[dict[str, object]]:
    base = f"http://127.0.0.1:{http}/api/v1"
    devices = httpx.get(f"{base}/devices", headers=headers, timeout=5).json()
    return [httpx.get(f"{base}/devices/{d['did']}/twin", headers=headers, timeout=5).json() for d in devices[:3]]
