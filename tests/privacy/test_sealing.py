"""Telemetry of a bound device and the names a user gives are sealed with the owner's key: readable through the
hub, shredded by erasure, and unreadable in a backup of the cell database made before the erasure."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.bootstrap import Services
from ecohub.privacy.crypto import SubjectKeys
from ecohub.privacy.sealing import UNREADABLE_NAME, Opener, Seal, event_aad, name_aad, telemetry_aad, twin_aad
from ecohub.sdk.device import Device
from ecohub.store.db import make_engine
from ecohub.telemetry.models import DeviceEvent, Sample
from ecohub.twin.models import TwinProperty
from tests.conftest import load_spec
from tests.helpers import eventually
from tests.home.conftest import PASSWORD, asignup

SECRET_READING = 1234  # a distinctive electric-power reading (11.2, watts) to look for in the raw file


def _open_copy(db: Path, hub: Services, did: str) -> dict[str, list[tuple[bool, Any]]]:
    """Read a device's sealed rows from a database file with the hub's current key files, as an attacker with a
    stolen backup and the key volume would: {table: [(readable, value)]}."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            opener = Opener(SubjectKeys(None, hub.privacy.keys.cell_keys), s, "eu")
            out: dict[str, list[tuple[bool, Any]]] = {"telemetry": [], "device_events": [], "twin_properties": []}
            for r in s.scalars(select(Sample).where(Sample.did == did)):
                out["telemetry"].append(opener.value(r.value, r.subject, r.sealed, telemetry_aad(did, r.key)))
            for e in s.scalars(select(DeviceEvent).where(DeviceEvent.did == did)):
                out["device_events"].append(opener.value(e.arguments, e.subject, e.sealed,
                                                         event_aad(did, e.siid, e.eiid)))
            for p in s.scalars(select(TwinProperty).where(TwinProperty.did == did)):
                out["twin_properties"].append(opener.value(p.value, p.subject, p.sealed, twin_aad(did, p.key)))
            return out
    finally:
        engine.dispose()


async def test_bound_device_telemetry_is_sealed_and_erasure_shreds_it_in_backups(hub: Services, plug_model: str,
                                                                                 tmp_path: Path) -> None:
    bound, unbound = hub.devices.provision(model=plug_model, cell="eu", count=2)
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        user = await asignup(http, "ann@example.org")
        ann_id, ann = user["user_id"], user["headers"]
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann)).json()["home_id"]
        r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": bound.did, "bind_code": bound.bind_code},
                            headers=ann)
        assert r.status_code == 201, r.text
        devices = [Device(did=c.did, secret=c.secret, spec=load_spec(plug_model), host="127.0.0.1",
                          port=hub.runtime.mqtt_port or 0) for c in (bound, unbound)]
        for dev in devices:
            await dev.connect()
        try:
            for dev in devices:
                dev.report({(2, 1): True, (11, 2): SECRET_READING})
                dev.emit_event(*next(iter(dev.compiled.events)), {})

            async def series(did: str, headers: dict[str, str]) -> Any:
                r = await http.get(f"/api/v1/devices/{did}/telemetry", params={"key": "11.2"}, headers=headers)
                return r.json() if r.status_code == 200 and r.json().get("samples") else None

            # the owner reads her values through the hub as if nothing were encrypted
            got = await eventually(lambda: series(bound.did, ann))
            assert [s["value"] for s in got["samples"]] == [SECRET_READING]
            assert hub.twin.get("eu", bound.did)["properties"]["11.2"]["value"] == SECRET_READING
            await eventually(lambda: len(hub.telemetry.events("eu", bound.did)) == 1
                             and len(hub.telemetry.events("eu", unbound.did)) == 1)
        finally:
            for dev in devices:
                await dev.disconnect()

        db = hub.settings.data_dir / "cell-eu.db"
        with sqlite3.connect(db) as raw:
            rows = raw.execute("select did, value, subject, sealed from telemetry where key = '11.2'").fetchall()
        by_did = {did: (value, subject, sealed) for did, value, subject, sealed in rows}
        value, subject, sealed = by_did[bound.did]
        assert subject == ann_id and sealed and value in (None, "null")  # only ciphertext in the file
        assert str(SECRET_READING).encode() not in sealed
        value, subject, sealed = by_did[unbound.did]
        # an unbound device's data is nobody's: stored plain
        assert value in (SECRET_READING, str(SECRET_READING)) and subject is None and sealed is None

        backup = tmp_path / "cell-eu-backup.db"
        with sqlite3.connect(db) as a, sqlite3.connect(backup) as b:
            a.backup(b)
        before = _open_copy(backup, hub, bound.did)
        assert all(ok for rows in before.values() for ok, _ in rows)  # readable with the keys of the day
        assert {v for _, v in before["telemetry"]} == {True, SECRET_READING}
        assert len(before["device_events"]) == 1 and len(before["twin_properties"]) == 2

        r = await http.request("DELETE", "/api/v1/privacy/me", headers={**ann, "X-Password": PASSWORD})
        assert r.status_code == 202, r.text

    after = _open_copy(backup, hub, bound.did)
    assert sum(len(rows) for rows in after.values()) == 5  # the rows are still in the old copy...
    assert not any(ok for rows in after.values() for ok, _ in rows)  # ...and nobody can read them
    assert _open_copy(db, hub, bound.did) == {"telemetry": [], "device_events": [], "twin_properties": []}
    assert hub.telemetry.series("eu", unbound.did, "11.2")[0]["value"] == SECRET_READING  # others untouched


def test_a_sealed_value_moved_to_another_row_does_not_open(services: Services) -> None:
    ann = services.home.accounts.signup(email="ann@example.org", password=PASSWORD, country="DE")
    with services.dbs.cell_session("eu") as s:
        key = services.privacy.keys.ensure(s, "eu", ann["user_id"])
        blob = Seal(ann["user_id"], AESGCM(key)).seal(21.5, telemetry_aad("eu-d1", "3.1"))
        opener = services.sealer.opener(s, "eu")
        assert opener.value(None, ann["user_id"], blob, telemetry_aad("eu-d1", "3.1")) == (True, 21.5)
        assert opener.value(None, ann["user_id"], blob, telemetry_aad("eu-d2", "3.1")) == (False, None)
        assert opener.value(None, ann["user_id"], blob[:-1] + bytes([blob[-1] ^ 1]),
                            telemetry_aad("eu-d1", "3.1")) == (False, None)
        assert opener.value(None, "nobody", blob, telemetry_aad("eu-d1", "3.1")) == (False, None)  # no such key
        assert opener.unreadable == 3


def _names_from_copy(db: Path, services: Services, owner: str) -> dict[str, str]:
    """Open every home, room and device name of a database file with the hub's current key files."""
    with sqlite3.connect(db) as raw:
        rows = [("homes", i, n) for i, n in raw.execute("select id, name from homes")]
        rows += [("rooms", i, n) for i, n in raw.execute("select id, name from rooms")]
        rows += [("bindings", i, n) for i, n in raw.execute("select did, name from bindings")]
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            opener = Opener(SubjectKeys(None, services.privacy.keys.cell_keys), s, "eu")
            return {f"{table}:{row_id}": opener.text(owner, name, name_aad(table, row_id))
                    for table, row_id, name in rows}
    finally:
        engine.dispose()


def test_names_a_user_gives_are_sealed_with_the_home_owners_key(client: TestClient, services: Services,
                                                                  world: dict[str, Any], tmp_path: Path) -> None:
    ann, home, did = world["ann"], world["home"], world["did"]
    room = client.post(f"/api/v1/homes/{home}/rooms", json={"name": "Anna's bedroom"}, headers=ann["headers"])
    room_id = room.json()["room_id"]
    r = client.patch(f"/api/v1/homes/{home}/devices/{did}", json={"name": "Bedside lamp", "room_id": room_id},
                     headers=ann["headers"])
    assert r.status_code == 200 and r.json()["name"] == "Bedside lamp", r.text
    assert client.patch(f"/api/v1/homes/{home}", json={"name": "Via Roma 3"},
                        headers=ann["headers"]).status_code == 200

    # the hub shows the names; the file holds only ciphertext
    got = client.get(f"/api/v1/homes/{home}", headers=ann["headers"]).json()
    assert got["name"] == "Via Roma 3" and got["rooms"] == [{"room_id": room_id, "name": "Anna's bedroom"}]
    assert got["devices"][0]["name"] == "Bedside lamp"
    assert client.get("/api/v1/homes", headers=ann["headers"]).json()[0]["name"] == "Via Roma 3"
    db = services.settings.data_dir / "cell-eu.db"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    for plain in ("Via Roma", "Anna's bedroom", "Anna''s bedroom", "Bedside lamp"):
        assert plain not in dump

    # the export opens them for the owner
    zf = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/privacy/export",
                                               headers={**ann["headers"], "X-Password": PASSWORD}).content))
    assert json.loads(zf.read("homes.json"))[0]["name"] == "Via Roma 3"
    assert json.loads(zf.read("rooms.json"))[0]["name"] == "Anna's bedroom"
    assert json.loads(zf.read("bindings.json"))[0]["name"] == "Bedside lamp"

    backup = tmp_path / "before.db"
    with sqlite3.connect(db) as a, sqlite3.connect(backup) as b:
        a.backup(b)
    assert set(_names_from_copy(backup, services, ann["user_id"]).values()) == {
        "Via Roma 3", "Anna's bedroom", "Bedside lamp"}
    services.privacy.dsr.erase("eu", ann["user_id"], actor="operator:test")
    assert set(_names_from_copy(backup, services, ann["user_id"]).values()) == {UNREADABLE_NAME}
