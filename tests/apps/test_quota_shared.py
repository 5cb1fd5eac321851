"""Quotas shared through Redis (`ECOHUB_REDIS_URL`): an in-process API and a separate `ecohub up` process count an
app's requests in one place, so together they grant the quota once; in process memory (the embedded default) each
process counts alone; an unreachable Redis does not take the API down."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import bootstrap
from ecohub.hub import free_port
from ecohub.settings import Settings
from tests.apps.conftest import World
from tests.connect.noloss import cli_env, ecohub, http_ok
from tests.helpers import eventually, migrated
from tests.home.conftest import bearer

REDIS = "redis://127.0.0.1:6379/0"  # the machine's shared Redis: this test's keys under a prefix of its own
LIMIT = 6


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"ecohub-test-{secrets.token_hex(6)}"
    yield name
    r = redis.Redis.from_url(REDIS)
    keys = list(r.scan_iter(match=f"{name}*"))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture
def settings(tmp_path: Path, prefix: str) -> Settings:
    return Settings(data_dir=migrated(tmp_path), redis_url=REDIS, redis_key_prefix=prefix)


def _app_token(world: World) -> dict[str, str]:
    r = world.http.put(f"/api/v1/apps/{world.app['client_id']}/limits", json={"requests_per_minute": LIMIT},
                       headers=world.operator)
    assert r.status_code == 200, r.text
    world.console_login()
    return bearer(world.tokens()["access_token"])


def _left(response: httpx.Response) -> int:
    found = re.search(r'"app";r=(\d+)', response.headers["ratelimit"])
    assert found, response.headers
    return int(found.group(1))


@pytest.mark.timeout(300)
async def test_two_hub_processes_share_one_quota(world: World, settings: Settings, prefix: str,
                                                 tmp_path: Path) -> None:
    token = _app_token(world)
    http, mqtt = free_port(), free_port()
    other = ecohub("up", ["up", "--http-port", str(http), "--mqtt-port", str(mqtt)], settings.data_dir, tmp_path)
    other.env = cli_env(settings.data_dir, ECOHUB_REDIS_URL=REDIS, ECOHUB_REDIS_KEY_PREFIX=prefix)
    try:
        other.start()
        await eventually(lambda: http_ok(f"http://127.0.0.1:{http}/api/v1/health", [other]), timeout=120,
                         interval=0.3)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", headers=token, timeout=30) as hub:
            left = []
            for i in range(LIMIT):  # alternately here and in the other process: one count
                r = world.http.get("/api/v1/me/devices", headers=token) if i % 2 == 0 else \
                    await hub.get("/api/v1/me/devices")
                assert r.status_code == 200, r.text
                left.append(_left(r))
            assert left == list(range(LIMIT - 1, -1, -1))
            over = await hub.get("/api/v1/me/devices")
            assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(over.headers["retry-after"]) <= 60
            assert over.headers["ratelimit-policy"].startswith(f'"app";q={LIMIT};w=60') and _left(over) == 0
            assert world.http.get("/api/v1/me/devices", headers=token).status_code == 429
            usage = world.http.get(f"/api/v1/apps/{world.app['client_id']}/usage", headers=world.operator).json()
            assert usage["requests"]["used"] == LIMIT and usage["requests"]["remaining"] == 0
    except BaseException:
        print(other.tail())
        raise
    finally:
        other.stop()


def test_in_memory_each_process_counts_alone(world: World, tmp_path: Path) -> None:
    """The embedded default: without Redis, a second process grants the full quota again (why Redis is wired)."""
    token = _app_token(world)
    settings = world.services.settings.model_copy(update={"redis_url": None})
    alone = [bootstrap(settings), bootstrap(settings)]
    try:
        for services in alone:
            with TestClient(create_app(services), base_url="http://127.0.0.1") as c:
                codes = [c.get("/api/v1/me/devices", headers=token).status_code for _ in range(LIMIT + 1)]
            assert codes == [200] * LIMIT + [429]
    finally:
        for services in alone:
            services.close()


def test_an_unreachable_redis_leaves_requests_uncounted(world: World) -> None:
    token = _app_token(world)
    settings = world.services.settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    down = bootstrap(settings)
    try:
        with TestClient(create_app(down), base_url="http://127.0.0.1") as c:
            r = c.get("/api/v1/me/devices", headers=token)
            assert r.status_code == 200 and "ratelimit" not in r.headers
            usage = c.get(f"/api/v1/apps/{world.app['client_id']}/usage", headers=world.operator)
            assert usage.status_code == 503 and usage.json()["error"]["code"] == "unavailable"
    finally:
        down.close()
