"""Notifications on a real hub with real MQTT devices: a rule's notify action and a device going offline store
notifications for the home's people (listed newest first, paged, marked read over REST); the user's app receives
them signed on its webhook; erasure removes them."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ecohub.apps.domain import verify_webhook
from ecohub.bootstrap import Services
from ecohub.notify import service as notify_service
from ecohub.notify.models import Notification
from ecohub.sdk.device import Device
from ecohub.settings import Settings
from tests.apps.push_helpers import Subscriber, authorize
from tests.conftest import load_spec
from tests.helpers import eventually, migrated
from tests.home.conftest import PASSWORD, asignup, bearer

REDIRECT = "http://127.0.0.1:9/cb"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Webhooks to this machine allowed (the subscriber is local); a short offline debounce."""
    return Settings(data_dir=migrated(tmp_path), webhooks={"allow_private": True},
                    notify={"offline_debounce_s": 0.2})


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    yield sub
    sub.close()


async def _setup(http: httpx.AsyncClient, hub: Services, plug_model: str) -> tuple[dict[str, Any], str, Any]:
    creds = hub.devices.provision(model=plug_model, cell="eu")[0]
    ann = await asignup(http, "ann@example.org", country="DE")
    home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann["headers"])).json()["home_id"]
    r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                        headers=ann["headers"])
    assert r.status_code < 300, r.text
    return ann, home, creds


async def _mine(http: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = await http.get("/api/v1/me/notifications", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_notify_action_stores_lists_pushes_and_reads(hub: Services, plug_model: str, operator_token: str,
                                                          subscriber: Subscriber) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, home, creds = await _setup(http, hub, plug_model)
        bob = await asignup(http, "bob@example.org", country="DE")
        r = await http.post(f"/api/v1/homes/{home}/members", headers=ann["headers"],
                            json={"email": "bob@example.org", "role": "member"})
        assert r.status_code < 300, r.text
        # the share itself told bob about it (a device named by default after its model)
        assert [n["kind"] for n in await _mine(http, bob["headers"])] == ["share"]
        # a notify action refuses fields a firing does not have, naming where
        bad = {"name": "Plug", "triggers": [{"type": "property", "did": creds.did, "prop": "2.1"}],
               "actions": [{"type": "notify", "message": "{nonsense} happened"}]}
        r = await http.post(f"/api/v1/homes/{home}/automations", json=bad, headers=ann["headers"])
        assert r.status_code == 422 and "actions[0].message" in r.json()["error"]["message"]
        doc = {**bad, "actions": [{"type": "notify", "title": "{rule}", "message": "{device} turned {value}",
                                   "severity": "warning"}]}
        r = await http.post(f"/api/v1/homes/{home}/automations", json=doc, headers=ann["headers"])
        assert r.status_code == 201, r.text
        app = (await http.post("/api/v1/apps", headers=bearer(operator_token),
                               json={"name": "Dash", "redirect_uris": [REDIRECT]})).json()
        tokens = await authorize(http, email="ann@example.org", client_id=app["client_id"],
                                 client_secret=app["client_secret"], redirect_uri=REDIRECT, dids=[creds.did])
        r = await http.post(f"/api/v1/apps/{app['client_id']}/webhooks", headers=bearer(tokens["access_token"]),
                            json={"url": subscriber.url, "events": ["notification"]})
        assert r.status_code == 201, r.text
        hook = r.json()
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        try:
            dev.report({(2, 1): True})

            async def fired() -> list[dict[str, Any]] | None:
                items = [n for n in await _mine(http, ann["headers"]) if n["kind"] == "automation"]
                return items or None
            ann_items = await eventually_async(fired)
            n = ann_items[0]
            assert n["title"] == "Plug" and n["body"] == f"{plug_model} turned on" and n["severity"] == "warning"
            assert n["did"] == creds.did and n["read"] is False
            # every person of the home is told: bob too
            assert "automation" in [x["kind"] for x in await _mine(http, bob["headers"])]
            # the app of ann's grant gets it signed, as a `notification` event
            await eventually(lambda: subscriber.messages() or None)
            headers, body = subscriber.received[0]
            assert verify_webhook(hook["secret"], headers, body)
            msg = json.loads(body)
            assert msg["type"] == "notification" and msg["data"]["id"] == n["id"]
        finally:
            await dev.disconnect()
        # newest first, paged by cursor through the Link header
        r = await http.get("/api/v1/me/notifications", headers=ann["headers"], params={"limit": 1})
        assert r.headers["unread-count"] == str(len(await _mine(http, ann["headers"], unread=True)))
        first = r.json()
        assert len(first) == 1 and 'rel="next"' in r.headers["link"]
        nxt = r.headers["link"].split(";")[0].strip("<>")
        second = (await http.get(nxt, headers=ann["headers"])).json()
        assert second and second[0]["id"] != first[0]["id"]
        assert second[0]["created_ms"] <= first[0]["created_ms"]
        # mark read: one, then all; others' notifications are not found
        r = await http.post(f"/api/v1/me/notifications/{n['id']}:read", headers=ann["headers"])
        assert r.status_code == 200 and r.json()["read"] is True
        assert (await http.post(f"/api/v1/me/notifications/{n['id']}:read",
                                headers=bob["headers"])).status_code == 404
        r = await http.post("/api/v1/me/notifications:read-all", headers=ann["headers"])
        assert r.status_code == 200
        assert await _mine(http, ann["headers"], unread=True) == []
        # the console shows the rule as a sentence naming what it says
        r = await http.post("/console/login", data={"email": "ann@example.org", "password": PASSWORD})
        page = await http.get(f"/console/automations?home={home}")
        assert "notify the home&#39;s people: “{device} turned {value}”" in page.text


async def eventually_async(check: Any, timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    """`eventually` for an async check."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError("not found in time")
        await asyncio.sleep(0.1)


async def test_device_offline_notifies_export_holds_and_erasure_removes(hub: Services, plug_model: str) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, _home, creds = await _setup(http, hub, plug_model)
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        dev.report({(2, 1): True})
        await dev.disconnect()

        async def offline() -> list[dict[str, Any]] | None:
            items = [n for n in await _mine(http, ann["headers"]) if n["kind"] == "offline"]
            return items or None
        items = await eventually_async(offline)
        assert len(items) == 1 and items[0]["did"] == creds.did and items[0]["severity"] == "warning"
        assert "went offline" in items[0]["body"]
        # the console's notification centre lists the stored ones with the unread count
        r = await http.post("/console/login", data={"email": "ann@example.org", "password": PASSWORD})
        assert r.status_code == 303
        centre = (await http.get("/console/notifications.json")).json()
        assert centre["unread"] == 1 and centre["items"][0]["id"] == items[0]["id"]
        r = await http.get("/api/v1/privacy/export", headers={**ann["headers"], "X-Password": PASSWORD})
        assert r.status_code == 200, r.text[:300]
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        exported = [n for n in zf.namelist() if "notifications" in n]
        assert exported and items[0]["id"] in zf.read(exported[0]).decode()
        r = await http.delete("/api/v1/privacy/me", headers={**ann["headers"], "X-Password": PASSWORD})
        assert r.status_code == 202, r.text
    with hub.dbs.cell_session("eu") as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0


async def test_devices_going_offline_together_tell_each_bound_ones_people_once(hub: Services, plug_model: str,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut: many units drop at once. They are looked up a chunk at a time (a chunk of 4 here, so the 15
    units span four chunks); each bound unit's people hear of it once, the unbound ones tell nobody."""
    monkeypatch.setattr(notify_service, "OFFLINE_CHUNK", 4)
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann = await asignup(http, "ann@example.org", country="DE")
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann["headers"])).json()["home_id"]
        units = hub.devices.provision(model=plug_model, cell="eu", count=15)
        bound = units[::3] + units[1::3]  # 10 bound, interleaved with the 5 nobody bound
        for c in bound:
            r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": c.did, "bind_code": c.bind_code},
                                headers=ann["headers"])
            assert r.status_code < 300, r.text
        devs = [Device(did=c.did, secret=c.secret, spec=load_spec(plug_model), host="127.0.0.1",
                       port=hub.runtime.mqtt_port or 0) for c in units]
        await asyncio.gather(*(d.connect() for d in devs))
        await asyncio.gather(*(d.disconnect(graceful=False) for d in devs))  # the will says offline for each

        async def all_told() -> list[dict[str, Any]] | None:
            items = [n for n in await _mine(http, ann["headers"], limit=100) if n["kind"] == "offline"]
            return items if len(items) >= len(bound) else None
        await eventually_async(all_told, timeout=20)
        await asyncio.sleep(1.0)  # five debounces more: nothing else comes
        items = [n for n in await _mine(http, ann["headers"], limit=100) if n["kind"] == "offline"]
        assert sorted(n["did"] for n in items) == sorted(c.did for c in bound)
        assert all("went offline" in n["body"] for n in items)


async def _first_notification(http: httpx.AsyncClient, headers: dict[str, str], found: asyncio.Future[Any],
                              listening: asyncio.Event) -> None:
    async with http.stream("GET", "/api/v1/stream", headers=headers, timeout=30) as r:
        assert r.status_code == 200
        event = None
        async for line in r.aiter_lines():
            listening.set()
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "notification":
                found.set_result(json.loads(line[6:]))
                return


async def test_stream_carries_notifications_and_old_ones_are_pruned(hub: Services, plug_model: str) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann, home, creds = await _setup(http, hub, plug_model)
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        listening = asyncio.Event()
        streaming = asyncio.create_task(_first_notification(http, ann["headers"], found, listening))
        try:
            await asyncio.wait_for(listening.wait(), timeout=10)
            stored = await asyncio.to_thread(hub.notifications.notify_home, "eu", home, kind="automation",
                                             title="Leak", body="Water under the sink", severity="critical",
                                             did=creds.did)
            streamed = await asyncio.wait_for(found, timeout=10)
            assert streamed["id"] == stored[0]["id"] and streamed["severity"] == "critical"
        finally:
            streaming.cancel()
        # the maintenance job's prune keeps what is younger than the retention and drops what is older
        assert hub.notifications.prune() == {c: 0 for c in hub.dbs.cells}
        later = stored[0]["created_ms"] + int(hub.settings.notify.retention_days * 86_400_000) + 1
        assert hub.notifications.prune(now=later)["eu"] == 1
        assert await _mine(http, ann["headers"]) == []
