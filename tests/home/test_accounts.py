"""Accounts: sign-up pinned to a cell, sign-in, token expiry/revocation/forgery, personal data only in the cell."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from ecohub.bootstrap import Services
from ecohub.errors import InvalidInput
from ecohub.home.models import UserToken
from ecohub.region.domain import cell_for_country
from ecohub.store import utcnow
from tests.home.conftest import PASSWORD, bearer, signup

CELLS = ["eu", "us", "cn", "in", "sg"]


@pytest.mark.parametrize(("country", "cell"), [("DE", "eu"), ("gb", "eu"), ("CH", "eu"), ("NO", "eu"), ("US", "us"),
                                               ("BR", "us"), ("CN", "cn"), ("IN", "in"), ("JP", "sg"), ("NG", "sg")])
def test_country_pins_the_cell(country: str, cell: str) -> None:
    assert cell_for_country(country, CELLS) == cell


def test_sign_up_pins_every_market_to_the_cell_the_markets_table_names(services: Services) -> None:
    markets = services.ecosystem.markets.list()
    assert len(markets) >= 90
    assert {m["code"]: cell_for_country(m["code"], CELLS) for m in markets} == {m["code"]: m["cell"] for m in markets}


def test_unknown_or_unserved_country_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        cell_for_country("XX", CELLS)
    assert err.value.code == "unknown_country"
    with pytest.raises(InvalidInput) as err:
        cell_for_country("CN", ["eu", "us"])
    assert err.value.code == "cell_not_served" and err.value.details["cell"] == "cn"


def test_signup_signin_and_me(client: TestClient) -> None:
    u = signup(client, "Ada@Example.org", "BR")
    assert u["cell"] == "us"
    me = client.get("/api/v1/me", headers=u["headers"]).json()
    assert me == {**me, "user_id": u["user_id"], "email": "ada@example.org", "country": "BR", "cell": "us"}
    who = client.get("/api/v1/auth/me", headers=u["headers"]).json()
    assert who["role"] == "user" and who["subject"] == u["user_id"] and who["cell"] == "us"
    assert u["token"].startswith("ehu_us_")
    t = client.post("/api/v1/auth/token", data={"username": "ada@example.org", "password": PASSWORD, "cell": "us"})
    assert t.json()["token_type"] == "bearer" and t.json()["expires_in"] > 0


def test_bad_signups_say_why(client: TestClient) -> None:
    signup(client, "bob@example.org")
    cases = [({"email": "bob@example.org", "password": PASSWORD, "country": "FR"}, 409, "email_taken"),
             ({"email": "BOB@example.org ", "password": PASSWORD, "country": "US"}, 409, "email_taken"),
             ({"email": "carol@example.org", "password": "short", "country": "FR"}, 422, "weak_password"),
             ({"email": "not-an-email", "password": PASSWORD, "country": "FR"}, 422, "invalid_email"),
             ({"email": "dan@example.org", "password": PASSWORD, "country": "QQ"}, 422, "unknown_country")]
    for body, status, code in cases:
        r = client.post("/api/v1/auth/signup", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), body


@pytest.mark.parametrize("password", ["1234567890", "qwertyuiop", " " * 10, "\x00" * 10, "aaaaaaaaaaaa",
                                      "good-pass\nphrase", "Password123", "carol.smith@example.org"])
def test_common_breached_repeated_or_control_character_passwords_are_refused(client: TestClient,
                                                                             password: str) -> None:
    """NIST SP 800-63B: no password from the breach lists, no control characters, not the account's own email."""
    r = client.post("/api/v1/auth/signup", json={"email": "carol.smith@example.org", "password": password,
                                                 "country": "FR"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password", r.text
    assert client.post("/api/v1/auth/signup", json={"email": "carol.smith@example.org",
                                                    "password": "mauve tractor sings softly", "country": "FR"},
                       ).status_code == 201


def test_wrong_password_and_unknown_email_look_the_same(client: TestClient) -> None:
    signup(client, "eve@example.org")
    for username, password in [("eve@example.org", "wrong password!"), ("nobody@example.org", PASSWORD)]:
        r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"


def test_expired_forged_and_revoked_tokens_are_refused(client: TestClient, services: Services) -> None:
    u = signup(client, "fay@example.org")
    assert client.get("/api/v1/homes", headers=u["headers"]).status_code == 200
    forged = [("ehu_eu_" + "A" * 43, 401, "invalid_token"), ("ehu_zz_" + "A" * 43, 403, "wrong_cell"),
              ("ehu_garbage", 401, "invalid_token"), ("eht_" + "B" * 43, 401, "invalid_token"),
              (u["token"][:-2] + "xx", 401, "invalid_token")]
    for token, status, code in forged:
        r = client.get("/api/v1/homes", headers=bearer(token))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), token
    assert client.get("/api/v1/homes", headers=bearer("ehu_zz_" + "A" * 43)).json()["error"]["cell"] == "zz"
    # expiry: age the token in its cell
    with services.dbs.cell_session("eu") as s:
        s.execute(update(UserToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = client.get("/api/v1/homes", headers=u["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (401, "token_expired")
    # revocation: effective on the next request
    t2 = client.post("/api/v1/auth/token", data={"username": "fay@example.org", "password": PASSWORD}).json()
    assert client.post("/api/v1/auth/logout", headers=bearer(t2["access_token"])).status_code == 204
    r = client.get("/api/v1/homes", headers=bearer(t2["access_token"]))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "token_revoked")


def test_operator_tokens_still_work_and_can_log_out(client: TestClient, operator_token: str) -> None:
    assert client.get("/api/v1/auth/me", headers=bearer(operator_token)).json()["role"] == "operator"
    assert client.post("/api/v1/auth/logout", headers=bearer(operator_token)).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(operator_token)).json()["error"]["code"] == "token_revoked"


def test_personal_data_lives_only_in_the_users_cell(client: TestClient, services: Services) -> None:
    signup(client, "canary-4711@example.org", "IN")
    services.dbs.dispose()  # checkpoint nothing pending in pools; read the raw files
    data_dir = services.settings.data_dir
    for path in sorted(data_dir.glob("*.db*")):
        raw = path.read_bytes()
        if path.name.startswith("cell-in.db"):
            continue
        assert b"canary-4711" not in raw, f"the email leaked into {path.name}"
    cell_files = b"".join(p.read_bytes() for p in data_dir.glob("cell-in.db*"))
    assert b"canary-4711@example.org" not in cell_files  # sealed with the subject's key (privacy context)
    assert services.home.accounts.locate("canary-4711@example.org") is not None
    assert (services.home.accounts.locate("canary-4711@example.org") or ("",))[0] == "in"


def test_sign_in_is_throttled_per_account_and_per_source(client: TestClient) -> None:
    """200 wrong passwords in a few seconds no longer all get a fresh try: 429 with Retry-After, by account and IP."""
    signup(client, "dora@example.org")
    codes = [client.post("/api/v1/auth/token", data={"username": "dora@example.org", "password": f"wrong-{i}"}
                         ).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    r = client.post("/api/v1/auth/token", data={"username": "dora@example.org", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0  # even the right one waits now
    assert r.json()["error"]["code"] == "rate_limited"
    # another account from the same address is still served, until the address itself is over its limit
    signup(client, "erin@example.org")
    assert client.post("/api/v1/auth/token", data={"username": "erin@example.org", "password": PASSWORD}
                       ).status_code == 200
    statuses = {client.post("/api/v1/auth/token", data={"username": f"x{i}@example.org", "password": "nope-nope"}
                            ).status_code for i in range(30)}
    assert 429 in statuses
