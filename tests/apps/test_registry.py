"""App registration: the CLI and REST interfaces, the secret shown once, redirect URIs and privacy URL checked."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from ecohub.apps.domain import sha256
from ecohub.apps.models import App
from ecohub.bootstrap import Services
from tests.cli.test_cli import run
from tests.home.conftest import bearer


def test_cli_creates_an_app_with_a_secret_shown_once(tmp_path: Path) -> None:
    out = run("app", "create", "--name", "Dash", "--redirect-uri", "https://dash.example.com/cb", "--scope",
              "devices:read", "--json", data_dir=tmp_path)
    app = json.loads(out.stdout)
    assert app["client_id"].startswith("app_") and app["client_secret"].startswith("ehs_")
    assert app["scopes"] == ["devices:read"] and app["redirect_uris"] == ["https://dash.example.com/cb"]
    listed = run("app", "list", "--json", data_dir=tmp_path)
    assert "client_secret" not in listed.stdout and json.loads(listed.stdout)[0]["name"] == "Dash"


def test_rest_registration_and_bad_input(client: TestClient, services: Services, operator_token: str) -> None:
    staff = bearer(operator_token)
    partner = bearer(str(services.tokens.create(role="partner", partner_id="acme")["token"]))
    r = client.post("/api/v1/apps", headers=partner, json={"name": "Acme app",
                                                            "redirect_uris": ["https://acme.example/cb"]})
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["owner_partner"] == "acme" and set(app["scopes"]) >= {"devices:read", "automations:write"}
    with services.dbs.global_session() as s:  # only the hash is at rest
        row = s.get(App, app["client_id"])
        assert row is not None and row.secret_hash == sha256(app["client_secret"])
        assert app["client_secret"] not in json.dumps({"h": row.secret_hash, "u": row.redirect_uris})
    assert "client_secret" not in client.get(f"/api/v1/apps/{app['client_id']}", headers=partner).text
    other = bearer(str(services.tokens.create(role="partner", partner_id="other")["token"]))
    assert client.get(f"/api/v1/apps/{app['client_id']}", headers=other).status_code == 404
    assert client.get("/api/v1/apps", headers=other).json() == []
    for body, code in (({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
                       ({"redirect_uris": ["https://a.example/cb#frag"]}, "invalid_redirect_uri"),
                       ({"redirect_uris": ["https://a.example/cb"], "scopes": ["root"]}, "invalid_scope"),
                       ({"redirect_uris": ["https://a.example/cb"], "privacy_policy_url": "http://a.example/p"},
                        "unsafe_url"),
                       ({"redirect_uris": ["https://a.example/cb"], "privacy_policy_url": "https://127.0.0.1/p"},
                        "unsafe_url")):
        r = client.post("/api/v1/apps", headers=staff, json={"name": "X", **body})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    # only the operator suspends
    assert client.post(f"/api/v1/apps/{app['client_id']}/suspend", json={}, headers=partner).status_code == 403
    assert client.post(f"/api/v1/apps/{app['client_id']}/suspend", json={},
                       headers=staff).json()["status"] == "suspended"
