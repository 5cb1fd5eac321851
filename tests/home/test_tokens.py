"""Operator and partner tokens can be listed and withdrawn; every token expires; console sign-out really signs out."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from ecohub.bootstrap import Services


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_listed_without_secrets_and_revoked_at_once(client: TestClient, services: Services) -> None:
    op = services.tokens.create(role="operator", label="ops")
    acme = services.tokens.create(role="partner", partner_id="acme", label="acme ci")
    beta = services.tokens.create(role="partner", partner_id="beta", label="beta ci")
    listed = client.get("/api/v1/tokens", headers=_auth(str(op["token"]))).json()
    assert {t["token_id"] for t in listed} >= {op["token_id"], acme["token_id"], beta["token_id"]}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    # a partner sees and revokes only its own
    mine = client.get("/api/v1/tokens", headers=_auth(str(acme["token"]))).json()
    assert [t["token_id"] for t in mine] == [acme["token_id"]]
    r = client.delete(f"/api/v1/tokens/{beta['token_id']}", headers=_auth(str(acme["token"])))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_partner"
    # the operator withdraws the partner's token: refused from the next request on
    assert client.get("/api/v1/products", headers=_auth(str(beta["token"]))).status_code == 200
    assert client.delete(f"/api/v1/tokens/{beta['token_id']}", headers=_auth(str(op["token"]))).status_code == 204
    r = client.get("/api/v1/products", headers=_auth(str(beta["token"])))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    assert client.delete("/api/v1/tokens/nope", headers=_auth(str(op["token"]))).status_code == 404
    everything = client.get("/api/v1/tokens?include_inactive=true", headers=_auth(str(op["token"]))).json()
    assert next(t for t in everything if t["token_id"] == beta["token_id"])["status"] == "revoked"


def test_every_token_expires(services: Services) -> None:
    minted = services.tokens.create(role="operator")
    expires = datetime.fromisoformat(str(minted["expires_at"]))
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)


def test_token_list_and_revoke_on_the_cli(services: Services) -> None:
    data_dir = str(services.settings.data_dir)
    minted = services.tokens.create(role="partner", partner_id="acme", label="cli")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecohub.cli", *args, "--data-dir", data_dir],
                              capture_output=True, text=True, timeout=60)

    rows = json.loads(cli("token", "list", "--json").stdout)
    assert minted["token_id"] in [r["token_id"] for r in rows]
    assert cli("token", "revoke", str(minted["token_id"])).returncode == 0
    assert minted["token_id"] not in [r["token_id"] for r in json.loads(cli("token", "list", "--json").stdout)]


def test_console_sign_in_with_a_token_uses_a_session_that_sign_out_revokes(services: Services,
                                                                           client: TestClient) -> None:
    pasted = str(services.tokens.create(role="operator", label="mine")["token"])
    with TestClient(client.app) as browser:
        r = browser.post("/console/login", data={"token": pasted}, follow_redirects=False)
        assert r.status_code == 303
        session = browser.cookies.get("ecohub_console")
        assert session and session != pasted  # the cookie is not the pasted token
        assert browser.get("/console/", follow_redirects=False).status_code == 200
        browser.post("/console/logout", follow_redirects=False)
    # the old cookie no longer opens anything, while the pasted token still works
    again = TestClient(client.app)
    again.cookies.set("ecohub_console", session, path="/console")
    assert again.get("/console/", follow_redirects=False).status_code in (303, 401)
    assert again.get("/api/v1/tokens", headers=_auth(session)).status_code == 401
    assert again.get("/api/v1/tokens", headers=_auth(pasted)).status_code == 200
