"""Push fan-out benchmark: N granted devices changing at R changes/s, K webhook subscribers (local HTTP servers).

Changes enter as ingest commits them: every few ms the changes due are staged into the apps' push outbox inside one
cell transaction (`PushService.stage`, what the ingest transaction calls) and announced on the bus after the commit.
S sender processes (`PushService.run`, what `ecohub up` / `ecohub api` run; the outbox claims and queue leases keep
them from doubling up) fan the outbox out into the queue and send Standard-Webhooks-signed POSTs to K subscribers,
each an app holding one user's grant of all N devices, so every change is K pushes. The subscribers are asyncio
HTTP/1.1 servers (keep-alive) in a process of their own, so their parsing does not share the senders' CPU. Subscriber
0 answers 503 for `--outage` seconds in the middle of the run, then recovers.

Reported: pushes asked and delivered per second while the load runs; delay from the change's commit to its receipt
(p50/p99) for the healthy subscribers and for the one that was down; lost (a change some subscriber never got, by
webhook-id), duplicates, dead letters; how long the backlog took to drain after the load; the load average. The
reference measured in the same run: the same subscribers' request rate from one plain keep-alive client per
subscriber (asyncio streams, no database, no signing): what this machine's HTTP loopback allows at all.

`--batch-max N` makes the subscribers' webhooks batched (up to N messages a POST, `{"type": "batch", "events": …}`);
the subscribers count each event by its own id either way.

Scaled down by default (100 devices, 50 changes/s, 4 subscribers, 20 s, 5 s outage); the issue's figure is
`--devices 1000 --rate 500 --subscribers 20 --seconds 60 --outage 30`.

Usage::

    python bench/push.py [--devices N] [--rate R] [--subscribers K] [--seconds S] [--outage O] [--senders S]
                         [--batch-max N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from appfleet import grant_fleet

from ecohub.apps.models import PushOutbox, WebhookDelivery
from ecohub.bootstrap import bootstrap
from ecohub.connect.events import PropertiesReported
from ecohub.settings import Settings

SPEC = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "specs" / "cuco.plug.v3.json"
MODEL = "cuco.plug.v3"
TICK_S = 0.005  # ingest commits a batch every few ms under load


# -- subscribers (their own process) --------------------------------------------------------------------------


class Sink:
    """A webhook subscriber on a local port; while `down` it answers 503."""

    def __init__(self, down: Any) -> None:
        self.down = down  # a shared flag (multiprocessing Value) for subscriber 0, else None
        self.reset()

    def reset(self) -> None:
        """Forget what was received (the warm-up)."""
        self.seen: set[str] = set()
        self.duplicates = 0
        self.refused = 0
        self.requests = 0
        self.posts = 0  # accepted webhook POSTs (a batch counts once)
        self.delays_ms: list[float] = []
        self.received_at: list[float] = []

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
                self.requests += 1
                if "webhook-id" not in headers:  # the reference client
                    writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                elif self.down is not None and self.down.value:
                    self.refused += 1
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                else:
                    self.take(headers["webhook-id"], json.loads(body))
                    writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def take(self, webhook_id: str, doc: dict[str, Any]) -> None:
        """Count a received push by its id: a single message's `webhook-id`, or each event's `id` in a batch."""
        now = time.time()
        self.posts += 1
        events = doc["events"] if doc.get("type") == "batch" else [{"id": webhook_id, **doc}]
        for event in events:
            if event["id"] in self.seen:
                self.duplicates += 1
            self.seen.add(event["id"])
            self.delays_ms.append(now * 1000 - event["data"]["ts"])
            self.received_at.append(now)

    def report(self) -> dict[str, Any]:
        return {"seen": len(self.seen), "duplicates": self.duplicates, "refused": self.refused, "posts": self.posts,
                "delays_ms": self.delays_ms, "received_at": self.received_at}


def sinks_main(count: int, conn: Any, down: Any) -> None:
    """The subscribers' process: K servers on free ports; sends the ports, serves until told, sends the counts."""
    async def serve() -> None:
        sinks = [Sink(down if i == 0 else None) for i in range(count)]
        servers = [await asyncio.start_server(s.handle, "127.0.0.1", 0, backlog=256) for s in sinks]
        conn.send([srv.sockets[0].getsockname()[1] for srv in servers])
        loop = asyncio.get_running_loop()
        while True:
            what = await loop.run_in_executor(None, conn.recv)
            if what == "reset":  # after the warm-up
                for sink in sinks:
                    sink.reset()
                conn.send("ok")
            elif what == "counts":
                conn.send([{"seen": len(s.seen), "requests": s.requests} for s in sinks])
            elif what == "report":
                conn.send([s.report() for s in sinks])
                return
    asyncio.run(serve())


def senders_main(settings_json: dict[str, Any], idle_s: float, profile: str | None = None) -> None:
    """One sending process: the services on the shared data dir and the delivery loop, until SIGTERM (with
    `profile`, a cProfile of the loop is written there)."""
    import cProfile
    import signal

    services = bootstrap(Settings(**settings_json), migrate=False)
    push = services.apps.push
    push.policy = bench_policy(push.policy)
    loop = asyncio.new_event_loop()
    task = loop.create_task(push.run(idle_s=idle_s))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    services.close()


def bench_policy(policy: Any) -> Any:
    """A recovering subscriber is retried within seconds: waits capped at 4 s, 40 attempts span ≈ 2.5 min (the
    default policy's 12 attempts up to an hour apart span hours): a 30 s outage must not exhaust them."""
    return replace(policy, base_s=0.5, cap_s=4.0, max_attempts=40)


# -- the reference ----------------------------------------------------------------------------------------------


async def reference(ports: list[int], seconds: float = 3.0) -> float:
    """Requests/s the subscribers answer from one plain keep-alive client each (tiny body, no webhook headers)."""
    body = b'{"ref":1}'
    req = (b"POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    done = 0
    stop = time.perf_counter() + seconds

    async def one(port: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            writer.write(req)
            await reader.readuntil(b"\r\n\r\n")
            done += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in ports))
    return done / (time.perf_counter() - t0)


# -- the run ------------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (psutil: `pip install -e .[bench]`)."""
    import psutil

    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def _count(services: Any, cell: str, model: Any, *where: Any) -> int:
    with services.dbs.cell_session(cell) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def bench(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="ecohub-push-"))
    settings = Settings(data_dir=workdir / "data", webhooks={"allow_private": True})
    services = bootstrap(settings)
    services.products.import_spec(json.loads(SPEC.read_text()), model=MODEL, actor="bench", category="plug",
                                  target_markets=["DE"], target_price="19.90", forecast_volume=1000)
    ctx = mp.get_context("spawn")
    down = ctx.Value("b", 0)
    mine, theirs = ctx.Pipe()
    sink_proc = ctx.Process(target=sinks_main, args=(args.subscribers, theirs, down), name="subscribers")
    sink_proc.start()
    ports = mine.recv()
    devices = services.devices.provision(model=MODEL, count=args.devices, cell="eu")
    user = grant_fleet(services, devices, [f"http://127.0.0.1:{p}/hook" for p in ports], batch_max=args.batch_max)
    cell = user.cell or ""
    dids = [d.did for d in devices]
    ref = await reference(ports)
    mine.send("counts")
    mine.recv()
    senders = [ctx.Process(target=senders_main, name=f"sender-{i}",
                           args=(settings.model_dump(mode="json"), 0.05,
                                 f"{args.profile}/sender-{i}.prof" if args.profile else None))
               for i in range(args.senders)]
    for p in senders:
        p.start()
    push = services.apps.push
    # warm-up: one change, until every subscriber got it (the senders are up); then the counts start from zero
    warm = [PropertiesReported(dids[0], MODEL, cell, int(time.time() * 1000), {"2.1": True})]
    with services.dbs.cell_session(cell) as s:
        push.stage(s, cell, warm)
    while True:
        mine.send("counts")
        if all(c["seen"] >= 1 for c in mine.recv()):
            break
        await asyncio.sleep(0.2)
    mine.send("reset")
    mine.recv()
    sender_pids = [p.pid for p in senders if p.pid is not None]
    cpu0 = cpu_s(sender_pids), cpu_s([os.getpid()]), cpu_s([sink_proc.pid or 0])
    sent = 0
    stage_s = 0.0  # time the staging loop spent in its transactions (waiting for SQLite's writer among it)
    started = time.time()
    outage_from, outage_to = started + (args.seconds - args.outage) / 2, started + (args.seconds + args.outage) / 2
    while (now := time.time()) < started + args.seconds:
        down.value = int(outage_from <= now < outage_to)
        due = int((now - started) * args.rate) - sent
        if due > 0:
            ts = int(now * 1000)
            events = [PropertiesReported(dids[(sent + i) % len(dids)], MODEL, cell, ts, {"2.1": (sent + i) % 2 == 0})
                      for i in range(due)]
            t0 = time.perf_counter()
            with services.dbs.cell_session(cell) as s:  # as ingest does: staged in the write's transaction
                push.stage(s, cell, events)
            stage_s += time.perf_counter() - t0
            services.bus.publish(events)
            sent += due
        await asyncio.sleep(TICK_S)
    down.value = 0
    load_end = time.time()
    deadline = time.time() + args.drain
    while time.time() < deadline:
        mine.send("counts")
        if all(c["seen"] >= sent for c in mine.recv()):
            break
        await asyncio.sleep(0.5)
    drained = time.time()
    cpu = [b - a for a, b in zip(cpu0, (cpu_s(sender_pids), cpu_s([os.getpid()]), cpu_s([sink_proc.pid or 0])),
                                 strict=True)]
    for p in senders:
        p.terminate()
    for p in senders:
        p.join(30)
    mine.send("report")
    sinks = mine.recv()
    sink_proc.join(10)
    dead = _count(services, cell, WebhookDelivery, WebhookDelivery.status == "dead")
    pending = _count(services, cell, WebhookDelivery, WebhookDelivery.status == "pending")
    staged = _count(services, cell, PushOutbox)
    services.close()
    in_load = sum(1 for s in sinks for t in s["received_at"] if t <= load_end)
    healthy = [d for s in sinks[1:] for d in s["delays_ms"]] or sinks[0]["delays_ms"]
    return {
        "devices": args.devices, "rate": args.rate, "subscribers": args.subscribers, "senders": args.senders,
        "seconds": args.seconds, "outage_s": args.outage,
        "batch_max": args.batch_max,
        "changes_sent": sent, "changes_staged_per_s": round(sent / (load_end - started), 1),
        "staging_transactions_s": round(stage_s, 1), "pushes_expected": sent * args.subscribers,
        "pushes_asked_per_s": round(args.rate * args.subscribers, 1),
        "pushes_delivered": sum(s["seen"] for s in sinks),
        "posts_accepted": sum(s["posts"] for s in sinks),
        "delivered_per_s_during_load": round(in_load / (load_end - started), 1),
        "reference_plain_requests_per_s": round(ref, 1),
        "healthy_delay_ms_p50": round(pct(healthy, 50), 1),
        "healthy_delay_ms_p99": round(pct(healthy, 99), 1),
        "down_subscriber_delay_ms_p99": round(pct(sinks[0]["delays_ms"], 99), 1),
        "down_subscriber_refused_attempts": sinks[0]["refused"],
        "lost": sum(max(0, sent - s["seen"]) for s in sinks),
        "duplicates": sum(s["duplicates"] for s in sinks),
        "dead_lettered": dead, "still_pending": pending, "still_in_outbox": staged,
        "drain_after_load_s": round(drained - load_end, 1),
        "sender_cpu_s": round(cpu[0], 1),
        "sender_cpu_us_per_push": round(1e6 * cpu[0] / max(1, sum(s["seen"] for s in sinks)), 1),
        "stager_cpu_s": round(cpu[1], 1), "subscribers_cpu_s": round(cpu[2], 1),
        "load_average_at_end": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--senders", type=int, default=1, help="sending processes (default 1)")
    parser.add_argument("--batch-max", type=int, default=1,
                        help="the subscribers' webhooks take up to N messages a POST (default 1: one each)")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each sender to DIR/sender-N.prof")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds allowed for the backlog after the load")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=2), flush=True)


if __name__ == "__main__":
    main()
