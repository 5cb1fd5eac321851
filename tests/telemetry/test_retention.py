"""Retention: the operator's policies per product and property, and a prune that drops exactly what expired."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecohub.bootstrap import Services
from ecohub.cli.app import app
from ecohub.settings import Settings
from ecohub.store import now_ms
from ecohub.telemetry.domain import DAY
from ecohub.telemetry.models import Rollup, Sample
from tests.conftest import load_spec
from tests.helpers import DEFINITION
from tests.telemetry.conftest import write

NOW = 1_767_225_600_000 + 400 * DAY


def count(services: Services, model: Any = Sample, **where: Any) -> int:
    with services.dbs.cell_session("eu") as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.scalar(q) or 0)


def test_operator_reads_and_sets_retention(client: TestClient, services: Services, plug: str,
                                           op: dict[str, str]) -> None:
    url = "/api/v1/products/acme.plug.v1/retention"
    first = client.get(url, headers=op).json()
    assert first["raw_days"] == 365 and first["default"] == {"raw_days": 365, "rollup_days": 3 * 365}
    r = client.put(url, json={"raw_days": 30, "rollup_days": 400}, headers=op)
    assert r.status_code == 200 and (r.json()["raw_days"], r.json()["rollup_days"]) == (30, 400)
    r = client.put(url, json={"key": "11.1", "raw_days": 7}, headers=op)
    assert r.json()["properties"] == {"11.1": {"raw_days": 7, "rollup_days": 400}}
    assert client.put(url, json={"raw_days": 0}, headers=op).json()["error"]["code"] == "invalid_retention"
    assert client.get("/api/v1/products/nope.x.v1/retention", headers=op).status_code == 404
    partner = {"Authorization": f"Bearer {services.tokens.create(role='partner', partner_id='acme')['token']}"}
    assert client.put(url, json={"raw_days": 1}, headers=partner).status_code == 403
    # every cell enforces the same policy
    for cell in services.dbs.cells:
        with services.dbs.cell_session(cell) as s:
            from ecohub.telemetry.models import RetentionPolicy
            assert {p.key for p in s.scalars(select(RetentionPolicy))} == {"", "11.1"}


def test_prune_drops_exactly_what_each_rule_expired(services: Services, plug: str) -> None:
    services.products.import_spec(load_spec("cuco.plug.v3"), model="other.plug.v1", actor="test", **DEFINITION)
    other = services.devices.provision(model="other.plug.v1", cell="eu")[0].did  # keeps the default (365 days)
    services.telemetry.set_retention("acme.plug.v1", raw_days=30, rollup_days=100)
    services.telemetry.set_retention("acme.plug.v1", key="11.1", raw_days=200)
    ages = [1, 29, 31, 99, 101, 199, 201, 364, 366]  # days before NOW
    for did in (plug, other):
        for key in ("11.1", "11.2"):
            write(services, did, key, [(NOW - a * DAY, float(a)) for a in ages])
    services.telemetry.maintain(now_ms=NOW - 400 * DAY, prune=False)  # nothing rolled up yet is older than 400 d
    report = services.telemetry.maintain(now_ms=NOW)
    def kept(did: str, key: str) -> list[float]:
        return [v for (v,) in _values(services, did, key)]
    assert kept(plug, "11.2") == [29.0, 1.0]  # the product's 30 days
    assert kept(plug, "11.1") == [199.0, 101.0, 99.0, 31.0, 29.0, 1.0]  # the property's 200 days
    assert kept(other, "11.2") == [364.0, 201.0, 199.0, 101.0, 99.0, 31.0, 29.0, 1.0]  # the default 365 days
    assert report["eu"]["dropped"]["telemetry"] == 7 + 3 + 1 + 1
    # rollups outlive raw: the plug's power keeps its hourly/daily aggregates for 100 days
    with services.dbs.cell_session("eu") as s:
        oldest = s.scalar(select(func.min(Rollup.bucket)).where(Rollup.did == plug, Rollup.key == "11.2"))
    assert oldest is not None and NOW - oldest <= 100 * DAY and NOW - oldest > 30 * DAY
    again = services.telemetry.maintain(now_ms=NOW)
    assert again["eu"]["dropped"] == {"cell": "eu", "telemetry": 0, "device_events": 0, "rollups": 0}


def test_prune_deletes_in_bounded_batches(tmp_path: Path) -> None:
    from ecohub.bootstrap import bootstrap
    svc = bootstrap(Settings(data_dir=tmp_path / "d", telemetry={"prune_batch": 7, "retention_days": 1}))
    try:
        write(svc, "eu-batch", "2.1", [(NOW - 2 * DAY + i, i) for i in range(100)])
        assert svc.telemetry.maintain(now_ms=NOW)["eu"]["dropped"]["telemetry"] == 100
        assert count(svc) == 0
    finally:
        svc.close()


def test_cli_retention_and_prune(tmp_path: Path, monkeypatch: Any) -> None:
    data = tmp_path / "hub"
    monkeypatch.setenv("ECOHUB_DATA_DIR", str(data))
    runner = CliRunner()
    from ecohub.bootstrap import bootstrap
    svc = bootstrap(Settings(data_dir=data))
    svc.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test", **DEFINITION)
    svc.close()
    r = runner.invoke(app, ["telemetry", "retention", "set", "--model", "acme.plug.v1", "--raw-days", "14",
                            "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["telemetry", "retention", "show", "--model", "acme.plug.v1", "--json"])
    assert json.loads(r.output)["raw_days"] == 14
    r = runner.invoke(app, ["telemetry", "prune", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {row["cell"] for row in rows} == set(Settings().cells) and all(row["dropped_telemetry"] == 0 for row in rows)


def _values(services: Services, did: str, key: str) -> list[tuple[float]]:
    with services.dbs.cell_session("eu") as s:
        return [tuple(r) for r in s.execute(select(Sample.value).where(Sample.did == did, Sample.key == key)
                                             .order_by(Sample.ts))]  # type: ignore[misc]


def test_erasure_removes_rollups_whatever_the_retention(client: TestClient, services: Services, ann: dict[str, Any],
                                                        device: Any, op: dict[str, str]) -> None:
    from tests.home.conftest import PASSWORD
    services.telemetry.set_retention("acme.plug.v1", raw_days=36_500, rollup_days=36_500)  # keep "forever"
    t = now_ms() + 1  # after the binding; the hour it falls in started before it
    write(services, device.did, "11.2", [(t + i, 5.0) for i in range(10)])  # sealed with Ann's key
    services.telemetry.maintain(now_ms=t + DAY)
    assert count(services, Rollup, did=device.did) == 2  # the hour and the day, sealed for Ann
    r = client.delete("/api/v1/privacy/me", headers={**ann["headers"], "X-Password": PASSWORD})
    assert r.status_code == 202, r.text
    assert count(services, Rollup, did=device.did) == 0 and count(services, Sample, did=device.did) == 0
    services.telemetry.maintain(now_ms=t + DAY)  # the job does not bring them back
    assert count(services, Rollup, did=device.did) == 0
