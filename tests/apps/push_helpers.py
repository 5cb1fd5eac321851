"""Shared by the push tests: a real subscriber (a tiny threaded HTTP server that records signed webhooks, or is
'down'), the OAuth flow against a running hub, and the delivery rounds driven by hand."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx

from ecohub.apps.push import PushService
from ecohub.connect.events import PropertiesReported
from tests.home.conftest import PASSWORD, bearer

if TYPE_CHECKING:
    from tests.apps.conftest import World


class Subscriber:
    """Records every POST (headers, body); while `down`, answers 503 like an endpoint in an outage."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.down = False
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if outer.down:
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="subscriber").start()

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _, b in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def authorize(http: httpx.AsyncClient, *, email: str, client_id: str, client_secret: str, redirect_uri: str,
                    dids: list[str], scope: str = "devices:read devices:control") -> dict[str, Any]:
    """The authorization code flow with PKCE against a running hub, clicking through the consent form."""
    r = await http.post("/console/login", data={"email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": "xyz", "code_challenge": challenge, "code_challenge_method": "S256"}
    r = await http.get("/api/v1/oauth/authorize", params=params)
    page = await http.get(r.headers["location"])
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    r = await http.post("/console/oauth/authorize", data={**hidden, "did": dids, "decision": "allow"})
    assert r.status_code == 302, r.text
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = await http.post("/api/v1/oauth/token", auth=(client_id, client_secret),
                        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                              "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return dict(r.json())


def rounds(push: PushService, n: int = 1) -> int:
    """Run `n` delivery rounds (fan-out, claim, send, record) as the loop does; → messages attempted."""
    async def go() -> int:
        async with push.sender() as sender:
            total = 0
            for _ in range(n):
                total += await push.deliver_once(sender)
                await asyncio.sleep(0.01)
            return total
    return asyncio.run(go())


def subscribe(world: World, url: str, **extra: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """A webhook to `url` on a grant of the first device; → (the app token's headers, the created webhook)."""
    world.console_login()
    token = bearer(world.tokens([world.dids[0]])["access_token"])
    r = world.http.post(f"/api/v1/apps/{world.app['client_id']}/webhooks", headers=token, json={"url": url, **extra})
    assert r.status_code == 201, r.text
    return token, r.json()


def change(world: World, value: bool, ts: int | None = None) -> None:
    """A device change as ingest commits it: staged for the apps inside the write's transaction."""
    cell = world.user["cell"]
    with world.services.dbs.cell_session(cell) as s:
        world.services.apps.push.stage(s, cell, [PropertiesReported(
            world.dids[0], "cuco.plug.v3", cell, int(time.time() * 1000) if ts is None else ts, {"2.1": value})])


def fan_out(world: World) -> int:
    """Turn the outbox into queued messages now; → changes taken."""
    return world.services.apps.push.fan_out(world.user["cell"])
