"""A real subscriber for push tests: a tiny threaded HTTP server that records signed webhooks (or is 'down')."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.home.conftest import PASSWORD


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
