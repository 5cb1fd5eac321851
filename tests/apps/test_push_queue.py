"""The push queue lives in the database: it survives a restart; retries end in the dead letters; an endpoint
failing for too long is disabled, and can be enabled again."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from ecohub.apps.push import PushService
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.events import PropertiesReported
from ecohub.settings import Settings
from tests.apps.conftest import World
from tests.apps.push_helpers import Subscriber
from tests.home.conftest import bearer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", webhooks={"allow_private": True})


@pytest.fixture(autouse=True)
def queueing(services: Services) -> None:
    """These tests drive the delivery loop's rounds themselves (flush, deliver_once) instead of `run()`."""
    services.apps.push.queueing = True


def _rounds(push: PushService, n: int = 1) -> int:
    async def go() -> int:
        async with httpx.AsyncClient() as client:
            total = 0
            for _ in range(n):
                total += await push.deliver_once(client)
                await asyncio.sleep(0.01)
            return total
    return asyncio.run(go())


def _subscribe(world: World, url: str) -> tuple[dict[str, str], dict[str, str]]:
    world.console_login()
    token = bearer(world.tokens([world.dids[0]])["access_token"])
    r = world.http.post(f"/api/v1/apps/{world.app['client_id']}/webhooks", headers=token, json={"url": url})
    assert r.status_code == 201, r.text
    return token, r.json()


def _change(world: World, value: bool) -> None:
    """A device change as ingest commits it: staged for the apps inside the write's transaction."""
    cell = world.user["cell"]
    with world.services.dbs.cell_session(cell) as s:
        world.services.apps.push.stage(s, cell, [PropertiesReported(world.dids[0], "cuco.plug.v3", cell,
                                                                    int(time.time() * 1000), {"2.1": value})])


def _fan_out(world: World) -> int:
    return world.services.apps.push.fan_out(world.user["cell"])


def test_staged_changes_survive_a_restart_before_the_fan_out(world: World, settings: Settings,
                                                               subscriber: Subscriber) -> None:
    """Committed but never fanned out (the process died right after the ingest commit): the next one sends them."""
    _subscribe(world, subscriber.url)
    _change(world, True)
    later = bootstrap(settings)
    try:
        assert _rounds(later.apps.push) == 2  # one fanned out, one sent
    finally:
        later.close()
    assert [m["data"]["properties"]["2.1"] for m in subscriber.messages()] == [True]


def test_queued_messages_survive_a_restart(world: World, settings: Settings, subscriber: Subscriber) -> None:
    _subscribe(world, subscriber.url)
    _change(world, True)
    _change(world, False)
    assert _fan_out(world) == 2  # in the database, not yet sent
    # the process goes away before sending; a new one on the same data dir delivers
    later = bootstrap(settings)
    try:
        assert _rounds(later.apps.push) == 2
    finally:
        later.close()
    assert sorted(m["data"]["properties"]["2.1"] for m in subscriber.messages()) == [False, True]


def test_retries_end_in_dead_letters_and_long_failure_disables(world: World, subscriber: Subscriber) -> None:
    push = world.services.apps.push
    push.policy = replace(push.policy, max_attempts=3, base_s=0.001, cap_s=0.002)
    token, hook = _subscribe(world, subscriber.url)
    subscriber.down = True
    _change(world, True)
    _fan_out(world)
    for _ in range(50):
        _rounds(push)
        cid = world.app["client_id"]
        dead = world.http.get(f"/api/v1/apps/{cid}/webhooks/{hook['webhook_id']}/dead-letters", headers=token).json()
        if dead:
            break
    assert len(dead) == 1 and dead[0]["attempts"] == 3 and dead[0]["last_error"] == "HTTP 503"
    assert subscriber.refused == 3
    # failing for longer than the policy allows: disabled, nothing more is sent; enabling brings it back
    push.policy = replace(push.policy, disable_after_s=0.0)
    _change(world, False)
    _fan_out(world)
    _rounds(push)
    hooks = world.http.get(f"/api/v1/apps/{cid}/webhooks", headers=token).json()
    assert hooks[0]["status"] == "disabled"
    refused = subscriber.refused
    _change(world, True)
    _fan_out(world)
    _rounds(push, 3)
    assert subscriber.refused == refused
    subscriber.down = False
    r = world.http.post(f"/api/v1/apps/{cid}/webhooks/{hook['webhook_id']}/enable", headers=token)
    assert r.status_code == 200 and r.json()["status"] == "active"
    push.policy = replace(push.policy, disable_after_s=3600.0)
    _change(world, True)
    _fan_out(world)
    _rounds(push)
    assert [m["data"]["properties"]["2.1"] for m in subscriber.messages()][-1] is True


def test_withdrawn_access_stops_queued_pushes(world: World, subscriber: Subscriber) -> None:
    push = world.services.apps.push
    _subscribe(world, subscriber.url)
    _change(world, True)
    assert _fan_out(world) == 1
    grant = world.http.get("/api/v1/me/apps", headers=world.user["headers"]).json()[0]["grant_id"]
    assert world.http.delete(f"/api/v1/me/apps/{grant}", headers=world.user["headers"]).status_code == 204
    _change(world, False)
    _fan_out(world)
    assert _rounds(push, 2) == 0 and subscriber.received == []


def test_two_delivering_processes_send_each_message_once(world: World, settings: Settings,
                                                         subscriber: Subscriber) -> None:
    _subscribe(world, subscriber.url)
    for i in range(20):
        _change(world, i % 2 == 0)  # in the outbox: both processes fan out and send, each message once
    other = bootstrap(settings)  # a second API process on the same databases
    pushes = [world.services.apps.push, other.apps.push]
    for push in pushes:  # the little subscriber refuses connections beyond its backlog: retry those at once
        push.policy = replace(push.policy, base_s=0.001, cap_s=0.002)

    async def both() -> None:
        async with httpx.AsyncClient() as a, httpx.AsyncClient() as b:
            for _ in range(100):
                await asyncio.gather(pushes[0].deliver_once(a), pushes[1].deliver_once(b))
                if len(subscriber.received) >= 20:
                    return
                await asyncio.sleep(0.01)
    try:
        asyncio.run(both())
    finally:
        other.close()
    ids = [h["webhook-id"] for h, _ in subscriber.received]
    assert len(ids) == 20 and len(set(ids)) == 20
