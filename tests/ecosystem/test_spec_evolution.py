"""MIoT's rule as tooling: a spec version may only add; a breaking change needs a new major version."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from tests.conftest import load_spec

MODEL = "cuco.plug.v3"


def _props(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for s in doc["services"] for p in s.get("properties", [])]


def _added(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec plus one new read-only property: an addition."""
    new = copy.deepcopy(doc)
    new["services"][-1].setdefault("properties", []).append(
        {"iid": 99, "type": "urn:miot-spec-v2:property:on:00000006:cuco-v3:1", "description": "Extra",
         "format": "bool", "access": ["read", "notify"]})
    return new


def _broken(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec with one property removed: breaking."""
    new = copy.deepcopy(doc)
    for s in new["services"]:
        if s.get("properties"):
            s["properties"].pop()
            break
    return new


def test_additions_pass_breaking_changes_need_a_major_version(services: Services, plug_model: str) -> None:
    doc = load_spec(MODEL)
    token = services.tokens.create(role="operator")["token"]
    with TestClient(create_app(services), headers={"Authorization": f"Bearer {token}"}) as client:
        check = client.post(f"/api/v1/products/{MODEL}/spec:check", json={"spec": _added(doc)}).json()
        assert check["compatible"] is True and check["needs_major_version"] is False
        assert [c["kind"] for c in check["changes"]] == ["added"]
        check = client.post(f"/api/v1/products/{MODEL}/spec:check", json={"spec": _broken(doc)}).json()
        assert check["compatible"] is False and check["needs_major_version"] is True
        assert any(c["kind"] == "removed" and c["breaking"] for c in check["changes"])

        before = client.get(f"/api/v1/products/{MODEL}").json()["spec_version"]
        r = client.post("/api/v1/products", json={"model": MODEL, "spec": _broken(doc)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "breaking_spec_change"
        assert client.get(f"/api/v1/products/{MODEL}").json()["spec_version"] == before  # nothing changed
        ok = client.post("/api/v1/products", json={"model": MODEL, "spec": _added(doc)})
        assert ok.status_code == 201 and ok.json()["spec_version"] == before + 1
        major = client.post("/api/v1/products", json={"model": MODEL, "spec": _broken(doc), "major": True})
        assert major.status_code == 201 and major.json()["stage"] == "certification"


def test_spec_diff_on_the_cli_says_what_changed(tmp_path: Path) -> None:
    doc = load_spec(MODEL)
    old, added, broken = tmp_path / "old.json", tmp_path / "added.json", tmp_path / "broken.json"
    old.write_text(json.dumps(doc))
    added.write_text(json.dumps(_added(doc)))
    broken.write_text(json.dumps(_broken(doc)))

    def diff(a: Path, b: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecohub.cli", "spec", "diff", str(a), str(b), "--json"],
                              capture_output=True, text=True, timeout=60)

    r = diff(old, added)
    assert r.returncode == 0 and json.loads(r.stdout)["compatible"] is True
    r = diff(old, broken)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["compatible"] is False and any(c["breaking"] for c in out["changes"])
    assert _props(doc)  # the fixture has properties to remove
