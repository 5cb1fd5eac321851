"""No push is lost to a crash: `ecohub up` processes are SIGKILLed right after devices' changes are committed and
before their webhooks are sent; the next hub on the same data dir delivers every change, signed, each under one
webhook-id (a receiver that dedups by webhook-id sees every change exactly once)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecohub.apps.domain import verify_webhook
from ecohub.apps.models import PushOutbox, WebhookDelivery
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.hub import free_port
from ecohub.settings import Settings
from tests.apps.push_helpers import Subscriber
from tests.connect.noloss import (
    KEY,
    Proc,
    acked_pairs,
    cli_env,
    ecohub,
    http_ok,
    start_reporters,
    value_of,
    wait_all_stored,
)
from tests.helpers import eventually, migrated

PER_DEVICE = 15
PROP = f"{KEY[0]}.{KEY[1]}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=migrated(tmp_path), webhooks={"allow_private": True})


def _queue_state(services: Services, cell: str) -> tuple[int, int]:
    """(rows in the outbox, messages in the queue)."""
    with services.dbs.cell_session(cell) as s:
        return (s.scalar(select(func.count()).select_from(PushOutbox)) or 0,
                s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def _hub(name: str, data: Path, logs: Path, http: int, mqtt: int, **env: str) -> Proc:
    proc = ecohub(name, ["up", "--http-port", str(http), "--mqtt-port", str(mqtt)], data, logs)
    proc.env = cli_env(data, ECOHUB_WEBHOOKS__ALLOW_PRIVATE="true", **env)
    return proc


@pytest.mark.timeout(420)
async def test_kill_9_after_the_ingest_commit_loses_no_push(services: Services, plug_model: str, tmp_path: Path,
                                                            subscriber: Subscriber) -> None:
    data = services.settings.data_dir
    devices = services.devices.provision(model=plug_model, count=4)
    acc = services.home.accounts
    acc.signup(email="kim@example.org", password="kim's long password 42", country="DE")
    user = acc.authenticate(acc.signin(email="kim@example.org", password="kim's long password 42")["access_token"])
    cell = user.cell or ""
    home_id = services.home.homes.create(user, "flat")["home_id"]
    for d in devices:
        services.home.bindings.claim(user, home_id, did=d.did, code=d.bind_code)
    dids = [d.did for d in devices]
    app = services.apps.registry.create(name="Durable", redirect_uris=["https://durable.example/cb"])
    grant = services.apps.grants.approve(user, app["client_id"], ["devices:read"], dids)
    p = Principal(Role.APP, user.subject, cell=cell, app_id=app["client_id"], scopes=frozenset({"devices:read"}),
                  dids=frozenset(dids), grant_id=grant.grant_id)
    secret = services.apps.push.subscribe(p, app["client_id"], url=subscriber.url,
                                     events=["device.properties"])["secret"]
    http, mqtt = free_port(), free_port()
    health = f"http://127.0.0.1:{http}/api/v1/health"
    # 1: a hub that ingests but does not send (its fan-out never comes): the changes' commit is all there is
    first = _hub("up-1", data, tmp_path, http, mqtt, ECOHUB_PUSH__DELIVER="false")
    second = _hub("up-2", data, tmp_path, http, mqtt)
    third = _hub("up-3", data, tmp_path, http, mqtt)
    procs = [first, second, third]
    try:
        first.start()
        await eventually(lambda: http_ok(health, [first]), timeout=120, interval=0.3)
        batch_a = start_reporters(devices[:2], [mqtt], count=PER_DEVICE, window=5, deadline_s=90)
        for r in batch_a:
            await asyncio.to_thread(r.join, 100)
        await wait_all_stored(services, acked_pairs(batch_a), timeout=90)
        assert _queue_state(services, cell) == (2 * PER_DEVICE, 0)  # committed, in the outbox, not fanned out
        first.kill9()
        assert subscriber.received == []

        # 2: the default hub fans the outbox out; the receiver is down (nothing delivered); more changes come in;
        # killed again before any delivery succeeded
        subscriber.down = True
        second.start()
        await eventually(lambda: http_ok(health, [second]), timeout=120, interval=0.3)
        batch_b = start_reporters(devices[2:], [mqtt], count=PER_DEVICE, window=5, deadline_s=90)
        for r in batch_b:
            await asyncio.to_thread(r.join, 100)
        await wait_all_stored(services, acked_pairs(batch_b), timeout=90)
        await eventually(lambda: subscriber.refused > 0, timeout=60, interval=0.1)
        second.kill9()
        assert subscriber.received == []

        # 3: the receiver is back; a third hub delivers everything
        subscriber.down = False
        third.start()
        await eventually(lambda: http_ok(health, [third]), timeout=120, interval=0.3)
        await eventually(lambda: len({h["webhook-id"] for h, _ in subscriber.received}) >= 4 * PER_DEVICE,
                         timeout=120, interval=0.3)
    except BaseException:
        print("\n".join(proc.tail() for proc in procs))
        raise
    finally:
        for proc in procs:
            proc.stop()
    by_id: dict[str, bytes] = {}
    for headers, body in subscriber.received:
        assert verify_webhook(secret, headers, body), "a push whose signature does not verify"
        # at least once: a redelivery carries the same webhook-id and the same body, so receivers dedup
        assert by_id.setdefault(headers["webhook-id"], body) == body
    changes = Counter((m["data"]["did"], m["data"]["properties"][PROP]) for m in map(json.loads, by_id.values()))
    expected = Counter((d.did, value_of(i)) for d in devices for i in range(1, PER_DEVICE + 1))
    assert changes == expected  # every change once (by webhook-id), none missing
    assert _queue_state(services, cell)[0] == 0
