"""The brand's definition and industrial design are lifecycle guards: an incomplete definition cannot leave `defined`,
an unapproved (or superseded) design cannot be approved for sale or launched; designs are versioned, typed,
size-capped files stored by content hash, and the brand's decisions are audited."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from ecohub.ecosystem.definition import Definition, missing_definition
from ecohub.ecosystem.design import DesignService
from ecohub.errors import Conflict, PayloadTooLarge
from tests.ecosystem.conftest import spec
from tests.helpers import DEFINITION, PNG, approve_design

MODEL = "acme.plug.v9"


@pytest.fixture
def client(eco: Services, partner: str) -> Iterator[TestClient]:
    """An API client; the operator's token by default."""
    token = eco.tokens.create(role="operator", label="tests")["token"]
    with TestClient(create_app(eco), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def _partner(eco: Services, pid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {eco.tokens.create(role='partner', partner_id=pid)['token']}"}


def test_a_product_with_an_empty_category_cannot_leave_defined(client: TestClient, eco: Services) -> None:
    r = client.post("/api/v1/products", json={"model": MODEL, "partner_id": "acme", "spec": spec(), "stage": "defined"})
    assert r.status_code == 201 and r.json()["stage"] == "defined"
    r = client.post(f"/api/v1/products/{MODEL}/transitions", json={"to": "in_development"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "definition_incomplete"
    assert err["missing"] == ["category", "target_markets", "target_price", "forecast_volume"]
    client.patch(f"/api/v1/products/{MODEL}", json={"target_markets": ["DE"], "target_price": "19.90",
                                                     "forecast_volume": 5000})
    r = client.post(f"/api/v1/products/{MODEL}/transitions", json={"to": "in_development"})
    assert r.status_code == 409 and r.json()["error"]["missing"] == ["category"]
    client.patch(f"/api/v1/products/{MODEL}", json={"category": "plug"})
    r = client.post(f"/api/v1/products/{MODEL}/transitions", json={"to": "in_development"})
    assert r.status_code == 200 and r.json()["stage"] == "in_development"


def test_the_import_shortcut_obeys_the_same_guard(client: TestClient, eco: Services) -> None:
    asked = {"model": MODEL, "spec": spec(), "category": "plug", "stage": "certification"}
    r = client.post("/api/v1/products", json=asked)
    assert r.status_code == 409 and r.json()["error"]["code"] == "definition_incomplete"
    assert client.get(f"/api/v1/products/{MODEL}").status_code == 404  # nothing half-created
    # the stable bare import (no stage asked) stops where the definition stops it, and says what is missing
    r = client.post("/api/v1/products", json={"model": MODEL, "spec": spec(), "category": "plug"})
    assert r.status_code == 201, r.text
    assert r.json()["stage"] == "defined"
    assert r.json()["definition_missing"] == ["target_markets", "target_price", "forecast_volume"]
    assert client.post(f"/api/v1/products/{MODEL}/transitions", json={"to": "in_development"}).status_code == 409
    other = "acme.plug.v8"
    r = client.post("/api/v1/products", json={"model": other, "spec": spec(), **DEFINITION})
    assert r.status_code == 201 and r.json()["stage"] == "certification", r.text
    assert "definition_missing" not in r.json()


def test_missing_definition_names_every_gap() -> None:
    assert missing_definition(Definition("plug", ("DE",), __import__("decimal").Decimal("1"), 1, True)) == []
    assert missing_definition(Definition("uncategorised", (), None, 0, False)) == [
        "category", "target_markets", "target_price", "forecast_volume", "spec"]


def test_design_upload_by_the_owning_partner_approval_by_the_brand_audited(client: TestClient, eco: Services) -> None:
    eco.ecosystem.partners.add(name="Beta", partner_id="beta", country="DE", founded_on="2015-01-01", actor="t")
    eco.products.import_spec(spec(), model=MODEL, actor="test", partner_id="acme", **DEFINITION)
    acme, beta = _partner(eco, "acme"), _partner(eco, "beta")
    url = f"/api/v1/products/{MODEL}/designs"
    up = {"headers": {**acme, "Content-Type": "application/octet-stream"}, "params": {"filename": "front.png"}}
    r = client.post(url, content=PNG, **up)
    assert r.status_code == 201, r.text
    v1 = r.json()
    assert (v1["version"], v1["status"], v1["media_type"], v1["kind"]) == (1, "pending", "image/png", "render")
    assert v1["sha256"] == hashlib.sha256(PNG).hexdigest()
    stored = eco.settings.data_dir / "designs" / v1["sha256"][:2] / v1["sha256"]
    assert stored.read_bytes() == PNG  # by content hash under the data dir
    r = client.post(url, content=PNG, headers={**beta, "Content-Type": "application/octet-stream"},
                    params={"filename": "x.png"})
    assert r.status_code == 403  # another partner's product
    r = client.post(url, content=b"<svg onload=alert(1)></svg>", **up)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_design"
    r = client.post(url, content=b"\x89PNG\r\n\x1a\n" + b"\0" * (1024 * 1024 + 1), **up)
    assert r.status_code == 413
    assert client.get(f"/api/v1/products/{MODEL}").json()["design_ref"] == f"v1:sha256:{v1['sha256'][:16]}"

    r = client.post(f"{url}/1/approve", json={"note": "looks right"}, headers=acme)
    assert r.status_code == 403  # a partner does not approve its own design
    r = client.post(f"{url}/1/approve", json={"note": "looks right"})
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["decided_by"].startswith("operator:")
    assert client.post(f"{url}/1/reject", json={}).json()["error"]["code"] == "design_decided"
    file = client.get(f"{url}/1/file", headers=acme)
    assert file.status_code == 200 and file.content == PNG and file.headers["content-type"] == "image/png"
    assert [d["status"] for d in client.get(url, headers=acme).json()] == ["approved"]
    assert client.get(url, headers=beta).status_code == 403

    entries = eco.privacy.audit.entries(eco.settings.default_cell, subject=MODEL)
    assert [(e["action"], e["detail"]["version"]) for e in entries] == [("design.approved", 1)]
    assert eco.privacy.audit.verify(eco.settings.default_cell).ok


def test_launch_with_an_unapproved_newer_design_is_refused(eco: Services, product: str,
                                                          passed: dict[str, set[str]]) -> None:
    passed[product] = {"DE", "US"}
    with pytest.raises(Conflict) as err:
        eco.products.transition(product, "approved", actor="op")
    assert err.value.code == "design_not_approved" and "no industrial-design version" in err.value.message
    approve_design(eco, product)
    eco.products.transition(product, "approved", actor="op")
    newer = eco.ecosystem.designs.upload(product, PNG + b"v2", filename="v2.png", actor="partner:acme")
    assert newer["version"] == 2 and newer["status"] == "pending"
    with pytest.raises(Conflict) as err:
        eco.products.transition(product, "launched", actor="op")
    assert err.value.code == "design_not_approved" and "v2 is pending" in err.value.message
    eco.ecosystem.designs.decide(product, approve=False, actor="op", note="wrong colour")
    with pytest.raises(Conflict) as err:
        eco.products.transition(product, "launched", actor="op")
    assert "v2 is rejected" in err.value.message
    eco.ecosystem.designs.upload(product, PNG + b"v3", filename="v3.png", actor="partner:acme")
    eco.ecosystem.designs.decide(product, approve=True, actor="op")
    assert eco.products.transition(product, "launched", actor="op").stage == "launched"
    actions = [e["action"] for e in eco.privacy.audit.entries(eco.settings.default_cell, subject=product)]
    assert sorted(actions) == ["design.approved", "design.approved", "design.rejected"]


def test_same_file_twice_is_stored_once_and_size_is_capped(eco: Services, product: str, tmp_path: Path) -> None:
    designs = DesignService(eco.dbs, tmp_path / "store", max_bytes=len(PNG))
    a = designs.upload(product, PNG, filename="a.png", actor="t")
    b = designs.upload(product, PNG, filename="../../etc/b.png", actor="t")
    assert (a["version"], b["version"], b["filename"]) == (1, 2, "b.png")
    assert len(list((tmp_path / "store").rglob("*"))) == 2  # one directory, one file
    with pytest.raises(PayloadTooLarge):
        designs.upload(product, PNG + b"x", filename="big.png", actor="t")


def test_design_cli_upload_list_approve(tmp_path: Path) -> None:
    data = tmp_path / "d"
    render = tmp_path / "front.png"
    render.write_bytes(PNG)
    specs = Path(__file__).parent.parent / "fixtures" / "specs" / "cuco.plug.v3.json"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecohub.cli", *args, "--data-dir", str(data)], capture_output=True,
                              text=True, timeout=120, check=False)

    assert run("init").returncode == 0
    made = run("spec", "import", str(specs), "--model", MODEL, "--category", "plug", "--market", "DE", "--price",
               "19.90", "--forecast", "1000")
    assert made.returncode == 0, made.stderr
    up = run("design", "upload", str(render), "--model", MODEL, "--json")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["status"] == "pending"
    assert run("design", "approve", "--model", MODEL, "--note", "ok", "--json").returncode == 0
    listed = json.loads(run("design", "list", "--model", MODEL, "--json").stdout)
    assert [(d["version"], d["status"], d["decided_by"]) for d in listed] == [(1, "approved", "cli")]
    bad = tmp_path / "notes.txt"
    bad.write_text("just text")
    refused = run("design", "upload", str(bad), "--model", MODEL)
    assert refused.returncode == 7 and "invalid_design" in refused.stderr
