"""Quotas: requests per minute per app and per user, 429 with Retry-After and the IETF RateLimit headers, and the
usage the developer sees."""

from __future__ import annotations

import re

from tests.apps.conftest import World
from tests.home.conftest import bearer


def test_app_quota_429_with_headers_and_usage(world: World) -> None:
    cid = world.app["client_id"]
    r = world.http.put(f"/api/v1/apps/{cid}/limits", json={"requests_per_minute": 5}, headers=world.operator)
    assert r.status_code == 200 and r.json()["limits"]["requests_per_minute"] == 5
    world.console_login()
    app = bearer(world.tokens()["access_token"])
    seen = []
    for _ in range(5):
        r = world.http.get("/api/v1/me/devices", headers=app)
        assert r.status_code == 200
        seen.append(r.headers["ratelimit"])
    assert r.headers["ratelimit-policy"].startswith('"app";q=5;w=60')
    assert [int(re.search(r'"app";r=(\d+)', h).group(1)) for h in seen] == [4, 3, 2, 1, 0]  # type: ignore[union-attr]
    over = world.http.get("/api/v1/me/devices", headers=app)
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["retry-after"]) <= 60 and '"app";r=0' in over.headers["ratelimit"]
    usage = world.http.get(f"/api/v1/apps/{cid}/usage", headers=world.operator).json()
    assert usage["requests"]["per_minute"] == 5 and usage["requests"]["remaining"] == 0
    assert usage["pushes"]["per_day"] > 0
    # the user's own token has its own, separate quota
    r = world.http.get("/api/v1/me/devices", headers=world.user["headers"])
    assert r.status_code == 200 and '"user";q=' in r.headers["ratelimit-policy"]


def test_operator_tokens_are_not_metered(world: World) -> None:
    r = world.http.get("/api/v1/apps", headers=world.operator)
    assert r.status_code == 200 and "ratelimit" not in r.headers
