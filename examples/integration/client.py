"""A small third-party integration for an ecohub: authorization code + PKCE, list the granted devices with their
twins, switch one, and receive the change by signed webhook and by the SSE stream.

It is what an outside developer would write: it needs only httpx and the standard library (no ecohub import). It
runs its own tiny HTTP server for the OAuth redirect (`/callback`) and the webhook (`/hook`).

    python examples/integration/client.py --hub http://127.0.0.1:8080 --client-id app_… --client-secret ehs_… \
        --port 8765          # register the app first with --redirect-uri http://127.0.0.1:8765/callback
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

SCOPES = "devices:read devices:control"


@dataclass
class Inbox:
    """What the little server received: the OAuth redirect and the webhooks (thread-safe hand-over to asyncio)."""

    loop: asyncio.AbstractEventLoop
    callback: asyncio.Future[dict[str, str]]
    hooks: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)


def serve(port: int, inbox: Inbox) -> ThreadingHTTPServer:
    """Start the redirect and webhook server on 127.0.0.1:`port` in a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                self.send_error(404)
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            inbox.loop.call_soon_threadsafe(lambda: inbox.callback.done() or inbox.callback.set_result(query))
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"Authorized: you can close this tab.")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            inbox.loop.call_soon_threadsafe(inbox.hooks.put_nowait, (headers, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="integration-server").start()
    return server


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), key = base64 part of whsec_…"""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split())


async def first_change(http: httpx.AsyncClient, token: str, did: str, ready: asyncio.Event) -> dict[str, Any]:
    """The first property change of `did` on the SSE stream."""
    async with http.stream("GET", "/api/v1/stream", headers={"Authorization": f"Bearer {token}"},
                           timeout=httpx.Timeout(10, read=60)) as r:
        r.raise_for_status()
        event = ""
        async for line in r.aiter_lines():
            ready.set()  # the first line ("retry: …") means the hub is listening for us
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "props":
                item = json.loads(line[6:])
                if item["did"] == did:
                    return dict(item)
    raise RuntimeError("the stream ended")


async def run(hub: str, client_id: str, client_secret: str, port: int,
              open_browser: Callable[[str], Awaitable[None]]) -> dict[str, Any]:
    """The whole integration once; → what it saw (devices, the switch's answer, the webhook and stream messages)."""
    loop = asyncio.get_running_loop()
    inbox = Inbox(loop, loop.create_future())
    server = serve(port, inbox)
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    try:
        # 1. authorization code + PKCE (S256)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        await open_browser(f"{hub}/api/v1/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPES,
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}))
        answer = await asyncio.wait_for(inbox.callback, timeout=300)
        if answer.get("state") != state or "code" not in answer:
            raise RuntimeError(f"authorization failed: {answer}")
        async with httpx.AsyncClient(base_url=hub, timeout=20) as http:
            r = await http.post("/api/v1/oauth/token", auth=(client_id, client_secret), data={
                "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect_uri,
                "code_verifier": verifier})
            r.raise_for_status()
            tokens = r.json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            # 2. the granted devices with their twins, in one call
            devices = (await http.get("/api/v1/me/devices", params={"include": "twin"}, headers=auth)).json()
            target = devices[0]
            on = (target["twin"]["properties"].get("2.1") or {}).get("value", False)
            # 3. subscribe a signed webhook and open the stream before switching
            hook = (await http.post(f"/api/v1/apps/{client_id}/webhooks", headers=auth, json={
                "url": f"http://127.0.0.1:{port}/hook", "events": ["device.properties"]})).json()
            ready = asyncio.Event()
            streamed = asyncio.create_task(first_change(http, tokens["access_token"], target["did"], ready))
            await asyncio.wait_for(ready.wait(), timeout=10)
            # 4. switch it (the batch call; a single device works the same)
            switched = (await http.post("/api/v1/me/devices:set", headers=auth, json={
                "devices": [{"did": target["did"], "values": {"switch.on": not on}}]})).json()
            # 5. the change arrives by webhook (signature checked) and by the stream
            while True:
                headers, body = await asyncio.wait_for(inbox.hooks.get(), timeout=30)
                message = json.loads(body)
                if message["data"]["did"] == target["did"]:
                    break
            stream_item = await asyncio.wait_for(streamed, timeout=30)
            return {"devices": [d["did"] for d in devices], "switched": switched["results"][0],
                    "webhook": message, "webhook_verified": verify(hook["secret"], headers, body),
                    "stream": stream_item, "was_on": on}
    finally:
        server.shutdown()
        server.server_close()


async def _system_browser(url: str) -> None:
    print(f"Open this in a browser to authorize:\n  {url}")
    webbrowser.open(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hub", default="http://127.0.0.1:8080")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    result = asyncio.run(run(args.hub, args.client_id, args.client_secret, args.port, _system_browser))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
