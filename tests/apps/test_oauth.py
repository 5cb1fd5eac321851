"""OAuth 2.1 with PKCE through the real consent screen: codes, tokens, rotation, revocation, introspection, and
the RFC 6749 / 7009 errors for what a client or attacker gets wrong."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.apps.conftest import REDIRECT, World, pkce
from tests.home.conftest import bearer


def test_code_flow_gives_a_token_limited_to_the_granted_device(world: World) -> None:
    world.console_login()
    tokens = world.tokens([world.dids[0]])
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] and tokens["expires_in"] > 0
    assert set(tokens["scope"].split()) == {"devices:read", "devices:control"}
    app = bearer(tokens["access_token"])
    listed = world.http.get("/api/v1/me/devices", headers=app)
    assert listed.status_code == 200, listed.text
    assert [d["did"] for d in listed.json()] == [world.dids[0]]
    assert world.http.get(f"/api/v1/devices/{world.dids[0]}/twin", headers=app).status_code == 200
    # the other device of the same user was not granted; a stranger's device is not theirs at all
    assert world.http.get(f"/api/v1/devices/{world.dids[1]}/twin", headers=app).status_code == 404
    assert world.http.get(f"/api/v1/devices/{world.stranger_did}/twin", headers=app).status_code in (403, 404)
    # scopes: telemetry and homes were registered but not asked for; user-only routes refuse app tokens
    r = world.http.get(f"/api/v1/devices/{world.dids[0]}/telemetry", params={"key": "2.1"}, headers=app)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    assert world.http.get("/api/v1/homes", headers=app).json()["error"]["code"] == "insufficient_scope"
    assert world.http.post("/api/v1/homes", json={"name": "x"}, headers=app).json()["error"]["code"] == "wrong_role"
    assert world.http.get("/api/v1/me/apps", headers=app).status_code == 403
    assert world.http.get("/api/v1/privacy/export", headers=app).status_code == 403
    # the access was audited, like an operator's read
    entries = world.services.privacy.audit.entries(world.user["cell"], subject=world.dids[0], limit=10)
    assert any(e["actor"].startswith(f"app:{world.app['client_id']}") for e in entries)


def test_wrong_redirect_uri_is_a_400_not_a_redirect(world: World) -> None:
    _, challenge = pkce()
    r = world.http.get("/api/v1/oauth/authorize", follow_redirects=False,
                       params=world.authorize_url(challenge=challenge, redirect_uri="http://127.0.0.1:9/other"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = world.http.get("/api/v1/oauth/authorize", follow_redirects=False,
                       params=world.authorize_url(challenge=challenge, client_id="app_nope"))
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"


def test_pkce_is_required_with_s256(world: World) -> None:
    params = world.authorize_url(challenge="x" * 43)
    params.pop("code_challenge")
    r = world.http.get("/api/v1/oauth/authorize", params=params, follow_redirects=False)
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["error"] == ["invalid_request"] and q["state"] == ["s1"]
    r = world.http.get("/api/v1/oauth/authorize", follow_redirects=False,
                       params={**world.authorize_url(challenge="x" * 43), "code_challenge_method": "plain"})
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_request"]


def test_missing_or_wrong_verifier_and_reused_code(world: World) -> None:
    world.console_login()
    code, verifier = world.code_for(world.dids)
    r = world.exchange(code, None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    code, verifier = world.code_for(world.dids)
    r = world.exchange(code, pkce()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code, verifier = world.code_for(world.dids)
    first = world.exchange(code, verifier)
    assert first.status_code == 200
    access = bearer(first.json()["access_token"])
    assert world.http.get("/api/v1/me/devices", headers=access).status_code == 200
    again = world.exchange(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # the replay revoked what the code had given
    r = world.http.get("/api/v1/me/devices", headers=access)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def test_scope_escalation_is_refused(world: World) -> None:
    _, challenge = pkce()
    r = world.http.get("/api/v1/oauth/authorize", follow_redirects=False,
                       params=world.authorize_url(challenge=challenge, scope="devices:read automations:write"))
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_scope"]
    world.console_login()
    tokens = world.tokens(scope="devices:read")
    r = world.http.post("/api/v1/oauth/token", auth=(world.app["client_id"], world.app["client_secret"]),
                        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                              "scope": "devices:read devices:control"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    app = bearer(tokens["access_token"])
    r = world.http.post(f"/api/v1/me/devices/{world.dids[0]}/properties", json={"values": {"2.1": True}},
                        headers=app)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"


def test_refresh_rotates_and_reuse_revokes_the_family(world: World) -> None:
    world.console_login()
    tokens = world.tokens()
    auth = (world.app["client_id"], world.app["client_secret"])
    r = world.http.post("/api/v1/oauth/token", auth=auth,
                        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert world.http.get("/api/v1/me/devices", headers=bearer(fresh["access_token"])).status_code == 200
    # the rotated refresh token is presented again (stolen?): refused, and the whole family dies
    r = world.http.post("/api/v1/oauth/token", auth=auth,
                        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert world.http.get("/api/v1/me/devices", headers=bearer(fresh["access_token"])).status_code == 401
    r = world.http.post("/api/v1/oauth/token", auth=auth,
                        data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_revocation_and_introspection(world: World) -> None:
    world.console_login()
    tokens = world.tokens()
    auth = (world.app["client_id"], world.app["client_secret"])
    r = world.http.post("/api/v1/oauth/introspect", auth=auth, data={"token": tokens["access_token"]})
    body = r.json()
    assert r.status_code == 200 and body["active"] is True and body["sub"] == world.user["user_id"]
    assert world.http.post("/api/v1/oauth/revoke", data={"token": tokens["access_token"]}).status_code == 401
    r = world.http.post("/api/v1/oauth/revoke", auth=(world.app["client_id"], "wrong"),
                        data={"token": tokens["access_token"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = world.http.post("/api/v1/oauth/revoke", auth=auth, data={"token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert world.http.post("/api/v1/oauth/introspect", auth=auth,
                           data={"token": tokens["access_token"]}).json() == {"active": False}
    r = world.http.get("/api/v1/me/devices", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    assert world.http.post("/api/v1/oauth/revoke", auth=auth, data={"token": "nonsense"}).status_code == 200


def test_a_device_the_user_does_not_own_cannot_be_granted(world: World) -> None:
    world.console_login()
    _, challenge = pkce()
    r = world.consent(world.authorize_url(challenge=challenge), [world.dids[0], world.stranger_did])
    assert r.status_code == 403 and "not yours to grant" in r.text


def test_deny_sends_access_denied_back(world: World) -> None:
    world.console_login()
    _, challenge = pkce()
    r = world.consent(world.authorize_url(challenge=challenge), world.dids, decision="deny")
    assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT)
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["access_denied"]


def test_user_revokes_and_operator_suspends(world: World) -> None:
    world.console_login()
    tokens = world.tokens()
    app = bearer(tokens["access_token"])
    grants = world.http.get("/api/v1/me/apps", headers=world.user["headers"]).json()
    assert [g["app"] for g in grants] == ["Energy dashboard"] and len(grants[0]["devices"]) == 2
    page = world.http.get("/console/apps")
    assert "Energy dashboard" in page.text
    # suspension: the app's tokens stop at once; resuming brings them back
    cid = world.app["client_id"]
    assert world.http.post(f"/api/v1/apps/{cid}/suspend", json={"reason": "abuse"},
                           headers=world.operator).json()["status"] == "suspended"
    r = world.http.get("/api/v1/me/devices", headers=app)
    assert r.status_code == 401 and r.json()["error"]["code"] == "app_suspended"
    world.http.post(f"/api/v1/apps/{cid}/resume", headers=world.operator)
    assert world.http.get("/api/v1/me/devices", headers=app).status_code == 200
    # the user withdraws the grant on their page
    r = world.http.post(f"/console/apps/{grants[0]['grant_id']}/revoke", follow_redirects=False)
    assert r.status_code == 303
    assert world.http.get("/api/v1/me/devices", headers=app).status_code == 401
    assert world.http.get("/api/v1/me/apps", headers=world.user["headers"]).json() == []


def test_an_app_token_signs_itself_out(world: World) -> None:
    world.console_login()
    app = bearer(world.tokens()["access_token"])
    assert world.http.get("/api/v1/auth/me", headers=app).json()["role"] == "app"
    assert world.http.post("/api/v1/auth/logout", headers=app).status_code == 204
    assert world.http.get("/api/v1/me/devices", headers=app).status_code == 401
