"""Fixtures of the developer platform tests: an in-process API on a loopback URL, an app, a user with devices, and
the authorization code flow with PKCE driven through the real consent screen."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from tests.apps.push_helpers import Subscriber
from tests.home.conftest import PASSWORD, bearer, signup

REDIRECT = "http://127.0.0.1:9/callback"


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture
def http(services: Services) -> Iterator[TestClient]:
    """The API app in-process, addressed on a loopback URL (OAuth refuses plain http elsewhere)."""
    with TestClient(create_app(services), base_url="http://127.0.0.1") as c:
        yield c


@dataclass
class World:
    """An app, a user owning a home with two plugs, and a stranger owning one."""

    http: TestClient
    services: Services
    operator: dict[str, str]
    app: dict[str, Any]
    user: dict[str, Any]
    dids: list[str]
    stranger: dict[str, Any]
    stranger_did: str

    def console_login(self, email: str = "ann@example.org") -> None:
        r = self.http.post("/console/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303, r.text

    def authorize_url(self, *, challenge: str, scope: str = "devices:read devices:control", state: str = "s1",
                      redirect_uri: str = REDIRECT, **extra: str) -> dict[str, str]:
        return {"response_type": "code", "client_id": self.app["client_id"], "redirect_uri": redirect_uri,
                "scope": scope, "state": state, "code_challenge": challenge, "code_challenge_method": "S256", **extra}

    def consent(self, params: dict[str, str], dids: list[str], decision: str = "allow") -> Any:
        """Go through /oauth/authorize and the consent form like a browser; → the final redirect response."""
        r = self.http.get("/api/v1/oauth/authorize", params=params, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = self.http.get(r.headers["location"], follow_redirects=False)
        assert page.status_code == 200, page.text
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        form: dict[str, Any] = {**hidden, "did": dids, "decision": decision}
        return self.http.post("/console/oauth/authorize", data=form, follow_redirects=False)

    def code_for(self, dids: list[str], **kw: str) -> tuple[str, str]:
        """A fresh code for `dids` and its verifier."""
        verifier, challenge = pkce()
        r = self.consent(self.authorize_url(challenge=challenge, **kw), dids)
        assert r.status_code == 302, r.text
        q = parse_qs(urlsplit(r.headers["location"]).query)
        assert q["state"] == [kw.get("state", "s1")]
        return q["code"][0], verifier

    def exchange(self, code: str, verifier: str | None, redirect_uri: str = REDIRECT) -> Any:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier is not None:
            data["code_verifier"] = verifier
        return self.http.post("/api/v1/oauth/token", data=data, auth=(self.app["client_id"],
                                                                       self.app["client_secret"]))

    def tokens(self, dids: list[str] | None = None, **kw: str) -> dict[str, Any]:
        code, verifier = self.code_for(self.dids if dids is None else dids, **kw)
        r = self.exchange(code, verifier)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _bind(http: TestClient, services: Services, user: dict[str, Any], model: str, home: str) -> str:
    creds = services.devices.provision(model=model, cell=user["cell"])[0]
    r = http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                  headers=user["headers"])
    assert r.status_code == 201, r.text
    return creds.did


@pytest.fixture
def world(http: TestClient, services: Services, plug_model: str, operator_token: str) -> World:
    operator = bearer(operator_token)
    r = http.post("/api/v1/apps", headers=operator, json={"name": "Energy dashboard", "redirect_uris": [REDIRECT],
                                                           "scopes": ["devices:read", "devices:control",
                                                                      "homes:read", "telemetry:read"]})
    assert r.status_code == 201, r.text
    ann = signup(http, "ann@example.org")
    home = http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann["headers"]).json()["home_id"]
    dids = [_bind(http, services, ann, plug_model, home) for _ in range(2)]
    bob = signup(http, "bob@example.org")
    bob_home = http.post("/api/v1/homes", json={"name": "Nido"}, headers=bob["headers"]).json()["home_id"]
    return World(http, services, operator, r.json(), ann, dids, bob, _bind(http, services, bob, plug_model, bob_home))


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    """A real webhook receiver on a free local port (records what it gets; `down` → 503)."""
    sub = Subscriber()
    yield sub
    sub.close()
