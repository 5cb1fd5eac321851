"""Push fan-out benchmark: N granted devices changing at R changes/s, K webhook subscribers (local HTTP servers).

One process, like the hub: the changes enter where ingest hands them on (PropertiesReported on the bus, after the
commit), the apps context's delivery loop (`PushService.run`) queues them in the cell database and sends signed
webhooks. K apps each hold one user's grant of all N devices and one webhook each, so every change is K pushes.
One subscriber answers 503 for `--outage` seconds in the middle of the run (an endpoint that is down) and then
recovers. Reported: pushes delivered per second (while the load runs), delay from change to receipt (p50/p99),
and whether every message reached every subscriber exactly once (by webhook-id) after the outage.

Scaled down by default (100 devices, 50 changes/s, 4 subscribers, 20 s, 5 s outage); the issue's figure is
`--devices 1000 --rate 500 --subscribers 20 --seconds 60 --outage 30`.

Usage::

    python bench/push.py [--devices N] [--rate R] [--subscribers K] [--seconds S] [--outage O]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import func, select

from ecohub.apps.models import WebhookDelivery
from ecohub.auth import Principal, Role
from ecohub.bootstrap import bootstrap
from ecohub.connect.events import PropertiesReported
from ecohub.settings import Settings

SPEC = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "specs" / "cuco.plug.v3.json"
MODEL = "cuco.plug.v3"


@dataclass
class Sink:
    """A webhook subscriber on a local port (asyncio, HTTP/1.1 keep-alive); `down` → 503."""

    down: bool = False
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    refused: int = 0
    delays_ms: list[float] = field(default_factory=list)
    delivered_at: list[float] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode().split("\r\n")[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.down:
                    self.refused += 1
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                else:
                    msg_id = headers.get("webhook-id", "")
                    if msg_id in self.seen:
                        self.duplicates += 1
                    self.seen.add(msg_id)
                    now = time.time()
                    self.delays_ms.append(now * 1000 - json.loads(body)["data"]["ts"])
                    self.delivered_at.append(now)
                    writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


async def bench(devices: int, rate: float, subscribers: int, seconds: float, outage: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="ecohub-push-"))
    services = bootstrap(Settings(data_dir=workdir / "data", webhooks={"allow_private": True}))
    services.products.import_spec(json.loads(SPEC.read_text()), model=MODEL, actor="bench", category="plug",
                                  target_markets=["DE"], target_price="19.90", forecast_volume=1000)
    acc = services.home.accounts
    acc.signup(email="bench@example.org", password="bench password 123", country="DE")
    user = acc.authenticate(acc.signin(email="bench@example.org", password="bench password 123")["access_token"])
    home_id = services.home.homes.create(user, "bench")["home_id"]
    dids = []
    for d in services.devices.provision(model=MODEL, count=devices, cell=user.cell):
        services.home.bindings.claim(user, home_id, did=d.did, code=d.bind_code)
        dids.append(d.did)
    sinks = [Sink() for _ in range(subscribers)]
    servers = []
    for sink in sinks:
        server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
        sink.port = server.sockets[0].getsockname()[1]
        servers.append(server)
    apps = services.apps
    for i, sink in enumerate(sinks):
        app = apps.registry.create(name=f"bench {i}", redirect_uris=["https://bench.example/cb"])
        grant = apps.grants.approve(user, app["client_id"], ["devices:read"], dids)
        p = Principal(Role.APP, user.subject, cell=user.cell, app_id=app["client_id"],
                      scopes=frozenset({"devices:read"}), dids=frozenset(dids), grant_id=grant.grant_id)
        apps.push.subscribe(p, app["client_id"], url=f"http://127.0.0.1:{sink.port}/hook")
    push = apps.push
    # a recovering subscriber is retried within seconds; with waits capped at 4 s, 40 attempts span ≈ 2.5 min (the
    # default policy's 12 attempts up to an hour apart span hours): a 30 s outage must not exhaust them
    push.policy = replace(push.policy, base_s=0.5, cap_s=4.0, max_attempts=40)
    loop_task = asyncio.create_task(push.run(idle_s=0.05), name="push")
    sent = 0
    started = time.time()
    outage_from, outage_to = started + (seconds - outage) / 2, started + (seconds + outage) / 2
    down = sinks[0]
    while (now := time.time()) < started + seconds:
        down.down = outage_from <= now < outage_to
        due = int((now - started) * rate) - sent
        for _ in range(due):
            did = dids[sent % len(dids)]
            services.bus.publish([PropertiesReported(did, MODEL, user.cell or "", int(time.time() * 1000),
                                                     {"2.1": sent % 2 == 0})])
            sent += 1
        await asyncio.sleep(0.005)
    down.down = False
    load_end = time.time()
    expected = sent
    deadline = time.time() + 120
    while time.time() < deadline and any(len(s.seen) < expected for s in sinks):  # noqa: ASYNC110 - counters
        await asyncio.sleep(0.2)
    drained = time.time()
    loop_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop_task
    for server in servers:
        server.close()
    with services.dbs.cell_session(user.cell or "") as s:
        dead = s.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "dead"))
    in_load = sum(1 for s in sinks for t in s.delivered_at if t <= load_end)
    healthy_delays = [d for s in sinks[1:] for d in s.delays_ms] or sinks[0].delays_ms
    services.close()
    return {
        "devices": devices, "rate": rate, "subscribers": subscribers, "seconds": seconds, "outage_s": outage,
        "changes_sent": sent, "pushes_expected": expected * subscribers,
        "pushes_delivered": sum(len(s.seen) for s in sinks),
        "delivered_per_s_during_load": round(in_load / (load_end - started), 1),
        "healthy_delay_ms_p50": round(pct(healthy_delays, 50), 1),
        "healthy_delay_ms_p99": round(pct(healthy_delays, 99), 1),
        "down_subscriber_delay_ms_p99": round(pct(sinks[0].delays_ms, 99), 1),
        "down_subscriber_refused_attempts": sinks[0].refused,
        "lost": sum(max(0, expected - len(s.seen)) for s in sinks),
        "duplicates": sum(s.duplicates for s in sinks),
        "dead_lettered": dead,
        "drain_after_load_s": round(drained - load_end, 1),
        "load_average": os.getloadavg(),
        "median_delay_ms_all": round(statistics.median([d for s in sinks for d in s.delays_ms]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--outage", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.devices, args.rate, args.subscribers, args.seconds, args.outage)),
                     indent=2))


if __name__ == "__main__":
    main()
