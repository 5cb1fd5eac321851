"""Provisioning: opaque ids, high-entropy secrets stored only as salted hashes, and the lifecycle gate."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from ecohub.bootstrap import Services
from ecohub.connect.models import Device
from ecohub.region.domain import cell_of_did
from tests.conftest import load_spec
from tests.helpers import DEFINITION


def test_provisioned_secrets_are_never_stored(services: Services, plug_model: str) -> None:
    devices = services.devices.provision(model=plug_model, count=20)
    assert len({d.did for d in devices}) == 20 and len({d.secret for d in devices}) == 20
    assert all(len(d.secret) >= 40 and len(d.bind_code) == 8 for d in devices)
    assert all(cell_of_did(d.did) == "eu" for d in devices)
    db_file = services.settings.data_dir / "cell-eu.db"
    raw = db_file.read_bytes() + (db_file.with_name("cell-eu.db-wal").read_bytes()
                                  if db_file.with_name("cell-eu.db-wal").exists() else b"")
    for d in devices:
        assert d.secret.encode() not in raw and d.bind_code.encode() not in raw
    with services.dbs.cell_session("eu") as s:
        row = s.scalar(select(Device).where(Device.did == devices[0].did))
        assert row is not None and len(row.secret_hash) == 32 and len(row.secret_salt) == 16
    assert services.devices.verify(devices[0].did, devices[0].secret)
    assert not services.devices.verify(devices[0].did, devices[1].secret)


def test_devices_only_from_certification_on(services: Services) -> None:
    services.products.import_spec(load_spec("yeelink.light.spot2"), model="acme.light.v1", actor="t", stage="defined")
    try:
        services.devices.provision(model="acme.light.v1")
    except Exception as err:
        assert getattr(err, "code", "") == "not_provisionable"
        assert "certification" in str(err)
    else:
        raise AssertionError("provisioning a defined product must be refused")


def test_other_cell_and_bad_count(services: Services, plug_model: str) -> None:
    d = services.devices.provision(model=plug_model, cell="sg")[0]
    assert d.did.startswith("sg-") and services.devices.get(d.did).cell == "sg"
    for bad in ({"count": 0}, {"cell": "mars"}):
        try:
            services.devices.provision(model=plug_model, **bad)  # type: ignore[arg-type]
        except Exception as err:
            assert getattr(err, "status", 0) in (404, 422)
        else:
            raise AssertionError(bad)


async def test_provision_over_rest(api: httpx.AsyncClient, hub: Services, plug_model: str) -> None:
    r = await api.post("/api/v1/devices", json={"model": plug_model})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"did", "secret", "bind_code", "mqtt", "model"}
    assert body["mqtt"] == {"host": "127.0.0.1", "port": hub.runtime.mqtt_port}
    assert hub.devices.verify(body["did"], body["secret"])
    r = await api.get(f"/api/v1/devices/{body['did']}")
    assert r.status_code == 200 and "secret" not in r.json()
    r = await api.post("/api/v1/devices", json={"model": "nope.nope.v1"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model"
    r = await api.post("/api/v1/devices", json={"modle": plug_model})
    assert r.status_code == 422 and "model" in r.json()["error"]["message"]
    anon = httpx.AsyncClient(base_url=str(api.base_url))
    r = await anon.post("/api/v1/devices", json={"model": plug_model})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_token"
    await anon.aclose()


async def test_product_api(api: httpx.AsyncClient) -> None:
    spec = load_spec("miaomiaoce.sensor_ht.t9")
    r = await api.post("/api/v1/products", json={**DEFINITION, "model": "acme.sensor.v1", "partner_id": "acme",
                                                 "category": "sensor", "spec": spec})
    assert r.status_code == 201, r.text
    assert r.json()["stage"] == "certification"
    r = await api.get("/api/v1/products/acme.sensor.v1")
    assert r.status_code == 200 and r.json()["spec"] == spec
    assert [h["to"] for h in r.json()["history"]] == ["concept", "defined", "in_development", "certification"]
    spec["services"][0]["properties"][0]["format"] = "hex"
    r = await api.post("/api/v1/products", json={"model": "acme.sensor.v2", "spec": spec})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_spec" and err["problems"][0]["path"] == "services[0].properties[0].format"
    r = await api.post("/api/v1/products", json={"model": "Not A Model", "spec": load_spec("cuco.plug.v3")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_model"
