"""The push queue lives in the database: it survives a restart; retries end in the dead letters; an endpoint
failing for too long is disabled, and can be enabled again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from ecohub.bootstrap import Services, bootstrap
from ecohub.settings import Settings
from tests.apps.conftest import World
from tests.apps.push_helpers import Subscriber, change, fan_out, rounds, subscribe
from tests.helpers import migrated


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=migrated(tmp_path), webhooks={"allow_private": True})


@pytest.fixture(autouse=True)
def queueing(services: Services) -> None:
    """These tests drive the delivery loop's rounds themselves (flush, deliver_once) instead of `run()`."""
    services.apps.push.queueing = True


def test_staged_changes_survive_a_restart_before_the_fan_out(world: World, settings: Settings,
                                                               subscriber: Subscriber) -> None:
    """Committed but never fanned out (the process died right after the ingest commit): the next one sends them."""
    subscribe(world, subscriber.url)
    change(world, True)
    later = bootstrap(settings)
    try:
        assert rounds(later.apps.push) == 2  # one fanned out, one sent
    finally:
        later.close()
    assert [m["data"]["properties"]["2.1"] for m in subscriber.messages()] == [True]


def test_queued_messages_survive_a_restart(world: World, settings: Settings, subscriber: Subscriber) -> None:
    subscribe(world, subscriber.url)
    change(world, True)
    change(world, False)
    assert fan_out(world) == 2  # in the database, not yet sent
    # the process goes away before sending; a new one on the same data dir delivers
    later = bootstrap(settings)
    try:
        assert rounds(later.apps.push) == 2
    finally:
        later.close()
    assert sorted(m["data"]["properties"]["2.1"] for m in subscriber.messages()) == [False, True]


def test_retries_end_in_dead_letters_and_long_failure_disables(world: World, subscriber: Subscriber) -> None:
    push = world.services.apps.push
    push.policy = replace(push.policy, max_attempts=3, base_s=0.001, cap_s=0.002)
    token, hook = subscribe(world, subscriber.url)
    subscriber.down = True
    change(world, True)
    fan_out(world)
    for _ in range(50):
        rounds(push)
        cid = world.app["client_id"]
        dead = world.http.get(f"/api/v1/apps/{cid}/webhooks/{hook['webhook_id']}/dead-letters", headers=token).json()
        if dead:
            break
    assert len(dead) == 1 and dead[0]["attempts"] == 3 and dead[0]["last_error"] == "HTTP 503"
    assert subscriber.refused == 3
    # failing for longer than the policy allows: disabled, nothing more is sent; enabling brings it back
    push.policy = replace(push.policy, disable_after_s=0.0)
    change(world, False)
    fan_out(world)
    rounds(push)
    hooks = world.http.get(f"/api/v1/apps/{cid}/webhooks", headers=token).json()
    assert hooks[0]["status"] == "disabled"
    refused = subscriber.refused
    change(world, True)
    fan_out(world)
    rounds(push, 3)
    assert subscriber.refused == refused
    subscriber.down = False
    r = world.http.post(f"/api/v1/apps/{cid}/webhooks/{hook['webhook_id']}/enable", headers=token)
    assert r.status_code == 200 and r.json()["status"] == "active"
    push.policy = replace(push.policy, disable_after_s=3600.0)
    change(world, True)
    fan_out(world)
    rounds(push)
    assert [m["data"]["properties"]["2.1"] for m in subscriber.messages()][-1] is True


def test_withdrawn_access_stops_queued_pushes(world: World, subscriber: Subscriber) -> None:
    push = world.services.apps.push
    subscribe(world, subscriber.url)
    change(world, True)
    assert fan_out(world) == 1
    grant = world.http.get("/api/v1/me/apps", headers=world.user["headers"]).json()[0]["grant_id"]
    assert world.http.delete(f"/api/v1/me/apps/{grant}", headers=world.user["headers"]).status_code == 204
    change(world, False)
    fan_out(world)
    assert rounds(push, 2) == 0 and subscriber.received == []


def test_two_delivering_processes_send_each_message_once(world: World, settings: Settings,
                                                         subscriber: Subscriber) -> None:
    subscribe(world, subscriber.url)
    for i in range(20):
        change(world, i % 2 == 0)  # in the outbox: both processes fan out and send, each message once
    other = bootstrap(settings)  # a second API process on the same databases
    pushes = [world.services.apps.push, other.apps.push]
    for push in pushes:  # the little subscriber refuses connections beyond its backlog: retry those at once
        push.policy = replace(push.policy, base_s=0.001, cap_s=0.002)

    async def both() -> None:
        async with pushes[0].sender() as a, pushes[1].sender() as b:
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
