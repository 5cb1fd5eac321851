"""`ecohub security audit|findings|acknowledge|suppress|vulnerable` on a data dir (the same service as REST)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ecohub.bootstrap import Services
from ecohub.cli.app import app


def test_audit_findings_and_a_suppression_from_the_cli(services: Services, plug_model: str) -> None:
    services.devices.provision(model=plug_model)  # in the field without a declaration
    runner = CliRunner()
    data = ["--data-dir", str(services.settings.data_dir)]
    r = runner.invoke(app, ["security", "audit", *data, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["opened"] == 1
    r = runner.invoke(app, ["security", "findings", *data, "--json"])
    assert r.exit_code == 0, r.output
    [f] = json.loads(r.output)
    assert f["kind"] == "declaration.missing_or_expired" and f["subject"] == plug_model
    r = runner.invoke(app, ["security", "suppress", f["id"], "--reason", "  ", *data])
    assert r.exit_code == 7 and "reason" in r.output  # invalid input
    r = runner.invoke(app, ["security", "suppress", f["id"], "--reason", "prototype batch", *data, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["status"] == "suppressed"
    assert [e["actor"] for e in services.privacy.audit.entries("eu") if e["action"] == "security.finding.suppressed"] \
        == ["cli"]
    r = runner.invoke(app, ["security", "findings", *data, "--status", "open", "--json"])
    assert json.loads(r.output) == []
    r = runner.invoke(app, ["security", "findings", *data])  # the table view
    assert r.exit_code == 0 and plug_model in r.output and "suppressed" in r.output
