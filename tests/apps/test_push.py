"""Signed push on a real hub: a device's change reaches the app's webhook (Standard Webhooks signature) and its
SSE stream; a subscriber that is down gets every message once it is back; private URLs are refused."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecohub.apps.domain import verify_webhook
from ecohub.bootstrap import Services
from ecohub.sdk.device import Device
from ecohub.settings import Settings
from tests.apps.push_helpers import Subscriber, authorize
from tests.conftest import load_spec
from tests.helpers import eventually
from tests.home.conftest import asignup, bearer

REDIRECT = "http://127.0.0.1:9/cb"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Webhooks to this machine are allowed here (the subscriber is a local server)."""
    return Settings(data_dir=tmp_path / "data", webhooks={"allow_private": True})


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    yield sub
    sub.close()


async def _stream_one(http: httpx.AsyncClient, headers: dict[str, str], found: asyncio.Future[Any],
                      listening: asyncio.Event) -> None:
    async with http.stream("GET", "/api/v1/stream", headers=headers, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in r.aiter_lines():
            listening.set()  # the first line ("retry: …") comes once the hub listens for this stream
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "props":
                found.set_result(json.loads(line[6:]))
                return


async def test_change_reaches_webhook_and_stream_and_survives_an_outage(hub: Services, plug_model: str,
                                                                       operator_token: str,
                                                                       subscriber: Subscriber) -> None:
    hub.apps.push.policy = type(hub.apps.push.policy)(base_s=0.2, cap_s=1.0)
    creds = hub.devices.provision(model=plug_model, cell="eu")[0]
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        app = (await http.post("/api/v1/apps", headers=bearer(operator_token),
                               json={"name": "Dash", "redirect_uris": [REDIRECT]})).json()
        ann = await asignup(http, "ann@example.org", country="DE")
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann["headers"])).json()["home_id"]
        await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                        headers=ann["headers"])
        tokens = await authorize(http, email="ann@example.org", client_id=app["client_id"],
                                 client_secret=app["client_secret"], redirect_uri=REDIRECT, dids=[creds.did])
        token = bearer(tokens["access_token"])
        r = await http.post(f"/api/v1/apps/{app['client_id']}/webhooks", headers=token,
                            json={"url": subscriber.url, "events": ["device.properties"]})
        assert r.status_code == 201, r.text
        hook = r.json()
        # only the app itself manages its webhooks; a user token is refused
        assert (await http.get(f"/api/v1/apps/{app['client_id']}/webhooks",
                               headers=ann["headers"])).status_code == 403
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        listening = asyncio.Event()
        streaming = asyncio.create_task(_stream_one(http, token, found, listening))
        await asyncio.wait_for(listening.wait(), timeout=10)
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        try:
            dev.report({(2, 1): True})
            await eventually(lambda: subscriber.messages() or None)
            headers, body = subscriber.received[0]
            assert verify_webhook(hook["secret"], headers, body)
            assert headers["webhook-signature"].startswith("v1,") and headers["webhook-id"].startswith("msg_")
            msg = json.loads(body)
            assert msg["type"] == "device.properties" and msg["data"]["properties"]["2.1"] is True
            streamed = await asyncio.wait_for(found, timeout=10)
            assert streamed["did"] == creds.did and streamed["values"]["2.1"] is True
            # the subscriber goes down; changes keep coming; nothing is lost once it is back
            subscriber.down = True
            start = int(time.time() * 1000)
            for i, value in enumerate((False, True, False)):  # stamped by the device: one batch may ingest all three
                dev.report({(2, 1): value}, ts=start + i)
                await asyncio.sleep(0.05)
            await eventually(lambda: subscriber.refused >= 3 or None)
            subscriber.down = False
            await eventually(lambda: len(subscriber.received) >= 4 or None, timeout=20)
            # at least once, each message once (its webhook-id); retries may reorder: `ts` orders them
            later = sorted(subscriber.messages()[1:], key=lambda m: m["data"]["ts"])
            assert [m["data"]["properties"]["2.1"] for m in later] == [False, True, False]
            assert len({h["webhook-id"] for h, _ in subscriber.received}) == len(subscriber.received)
        finally:
            streaming.cancel()
            await dev.disconnect()


async def test_withdrawing_the_grant_ends_the_stream(hub: Services, plug_model: str, operator_token: str) -> None:
    creds = hub.devices.provision(model=plug_model, cell="eu")[0]
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        app = (await http.post("/api/v1/apps", headers=bearer(operator_token),
                               json={"name": "Dash", "redirect_uris": [REDIRECT]})).json()
        ann = await asignup(http, "ann@example.org", country="DE")
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann["headers"])).json()["home_id"]
        await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                        headers=ann["headers"])
        tokens = await authorize(http, email="ann@example.org", client_id=app["client_id"],
                                 client_secret=app["client_secret"], redirect_uri=REDIRECT, dids=[creds.did])
        async with http.stream("GET", "/api/v1/stream", headers=bearer(tokens["access_token"]),
                               timeout=httpx.Timeout(15, read=30)) as r:
            lines = r.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            grant = (await http.get("/api/v1/me/apps", headers=ann["headers"])).json()[0]["grant_id"]
            assert (await http.delete(f"/api/v1/me/apps/{grant}", headers=ann["headers"])).status_code == 204
            rest = [line async for line in lines]  # the hub closes the stream once it sees the revocation
            assert not any(line.startswith("event:") for line in rest)
