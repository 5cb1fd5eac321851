"""`ecohub certify run` end to end in a subprocess (default device: `ecohub simulate --fault`), then `verify`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ecohub.bootstrap import Services
from tests.certify.conftest import DECLARATION


def _ecohub(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ecohub", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_run_catches_a_fault_writes_a_signed_report_and_verifies_it(services: Services, plug_model: str,
                                                                         tmp_path: Path) -> None:
    data = str(services.settings.data_dir)
    decl = tmp_path / "declaration.json"
    decl.write_text(json.dumps(DECLARATION))
    out = tmp_path / "report"
    run = _ecohub("certify", "run", "--model", plug_model, "--simulate-fault", "foreign-topic", "--declaration",
                  str(decl), "--report", str(out), "--market", "DE", "--market", "US", "--fast", "--data-dir", data)
    assert run.returncode == 1, run.stdout + run.stderr  # a required check failed
    report = json.loads((out / "report.json").read_text())
    assert {c["id"] for c in report["checks"] if c["status"] != "pass"} == {"security.no_foreign_attempts"}
    assert [(m["market"], m["passed"]) for m in report["markets"]] == [("DE", False), ("US", True)]
    assert " simulate --model cuco.plug.v3 " in report["setup"]["device"]["command"]  # the default device
    assert "security.no_foreign_attempts" in (out / "report.html").read_text()
    assert "FAILED" in run.stdout and "security.no_foreign_attempts" in run.stdout

    ok = _ecohub("certify", "verify", str(out / "report.json"), "--data-dir", data)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report["checks"][0]["reason"] = "edited"
    (tmp_path / "tampered.json").write_text(json.dumps(report))
    bad = _ecohub("certify", "verify", str(tmp_path / "tampered.json"), "--data-dir", data)
    assert bad.returncode == 1 and "signature does not match" in bad.stdout
