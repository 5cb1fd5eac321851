"""OTA campaign benchmark: a staged campaign to N simulated devices in several processes, end to end over MQTT/HTTP.

* a hub (``running_hub``, what ``ecohub up`` runs: supervised nats-server, ingest, the OTA engine, the HTTP API)
  runs in this process on a temp data dir (SQLite);
* a partner, its product (cuco.plug.v3), a signing key, an image of ``--image-kb`` KiB uploaded (partner-signed),
  approved (brand countersignature);
* ``--devices`` SDK ``SimulatedDevice`` units (firmware 1.0.0, pinning the partner's and the brand's keys) run in
  ``--processes`` processes; each verifies both signatures, downloads its image over its per-device URL (HTTP range
  requests), checks sha256 and size, installs, and reports ota_progress;
* the campaign (``--stages``, default 1,10,50,100) runs to completion.

Printed: offer → done rate (devices/s over the campaign), per-device offer → done latency (p50/p99, seen by the
devices), hub CPU per device (this process + its nats-server, user+system, during the campaign), and image bytes
served per second by the hub's download route ÷ a plain static file server (``python -m http.server`` in a
subprocess) measured back to back in the same run, twice each and interleaved, by the same client in a process of
its own (``--serve-clients`` concurrent httpx downloads of the same image, ``--serve-seconds`` each).

Usage::

    python bench/ota.py [--devices 200] [--processes 2] [--image-kb 64] [--stages 1,10,50,100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import multiprocessing as mp
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "tests" / "fixtures" / "specs" / "cuco.plug.v3.json"
MODEL, PARTNER = "cuco.plug.v3", "cuco"
TARGET_RATIO = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ devices

def device_process(creds: list[dict[str, str]], port: int, trust: dict[str, str], out: Any, ready: Any,
                   go: Any, timeout_s: float, connect_concurrency: int, nice: int = 0) -> None:
    """One process of simulated devices: connect, then wait until each is on 2.0.0 (or the timeout)."""
    import resource as res

    if nice:  # the devices are hardware of their own in the field: here they must not starve the hub and its broker
        os.nice(nice)

    _soft, hard = res.getrlimit(res.RLIMIT_NOFILE)
    res.setrlimit(res.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.ERROR)
    from ecohub.sdk.device import DeviceError
    from ecohub.sdk.ota import OtaHandler
    from ecohub.sdk.simulator import SimulatedDevice

    spec = json.loads(SPEC_FILE.read_text())
    times: dict[str, list[float]] = {}

    class Timed(OtaHandler):
        def start(self, request_id: int, raw: Any) -> None:
            times.setdefault(self.device.did, [time.time()])
            super().start(request_id, raw)

    class Unit(SimulatedDevice):
        def make_ota(self, trust: dict[str, Any]) -> OtaHandler:
            return Timed(self, trust=trust)

    async def main() -> None:
        devs = [Unit(did=c["did"], secret=c["secret"], spec=spec, port=port, model=MODEL, firmware_version="1.0.0",
                     ota_trust=trust) for c in creds]
        gate = asyncio.Semaphore(connect_concurrency)
        failed: list[str] = []

        async def conn(d: Unit) -> None:
            for attempt in range(6):  # a connect storm can outrun the auth callout: back off and retry
                async with gate:
                    try:
                        await d.connect()
                        return
                    except DeviceError:
                        pass
                await asyncio.sleep(0.5 * 2**attempt)
            failed.append(d.did)

        await asyncio.gather(*(conn(d) for d in devs))
        devs = [d for d in devs if d.did not in set(failed)]
        out.put({"connected": len(devs), "connect_failed": len(failed)})
        ready.set()
        deadline = time.time() + timeout_s
        while time.time() < deadline and not go.is_set() and not all(d.firmware_version == "2.0.0" for d in devs):
            await asyncio.sleep(0.2)
            for d in devs:
                if d.firmware_version == "2.0.0" and len(times.get(d.did, [])) == 1:
                    times[d.did].append(time.time())
        # what each unit not on 2.0.0 knows of itself: the bench prints it beside the hub's view of the update
        behind = {d.did: {"offered": d.did in times, "busy": d.ota.busy, "connected": d.connected.is_set(),
                          "reconnects": d.reconnects, "ranges": len(d.ota.ranges), "version": d.firmware_version}
                  for d in devs if d.firmware_version != "2.0.0"}
        out.put({"done": sum(d.firmware_version == "2.0.0" for d in devs),
                 "latencies": [t[1] - t[0] for t in times.values() if len(t) == 2], "behind": behind})
        go.wait(timeout=60)
        for d in devs:
            await d.disconnect()

    asyncio.run(main())


# ------------------------------------------------------------------------------------------------ serving

def wait_all_offline(services: Any, within: float) -> float | None:
    """Seconds until no twin says online (the hub handled every unit's offline state); None if not within."""
    from sqlalchemy import func, select

    from ecohub.twin.models import Twin

    start = time.monotonic()
    while time.monotonic() - start < within:
        online = 0
        for cell in services.settings.cells:
            with services.dbs.cell_session(cell) as s:
                online += s.scalar(select(func.count()).select_from(Twin).where(Twin.online.is_(True))) or 0
        if online == 0:
            return round(time.monotonic() - start, 1)
        time.sleep(0.5)
    return None


def serving_in_a_process(urls: list[str], seconds: float) -> float:
    """`measure_serving` run in a process of its own (spawned): the downloading client must not share the hub's
    process, its GIL and its event loop, when the static server it is compared with has a process to itself
    (in the hub's process the client took most of the time the route got: 0.35-0.38 instead of ~0.9)."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return float(pool.apply(_serve_worker, (urls, seconds)))


def _serve_worker(urls: list[str], seconds: float) -> float:
    return asyncio.run(measure_serving(lambda i: urls[i], len(urls), seconds))[0]


async def measure_serving(url_of: Any, clients: int, seconds: float) -> tuple[float, int]:
    """Bytes per second that `clients` concurrent downloaders get for `seconds` (full-image GETs)."""
    total = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def worker(i: int) -> None:
            nonlocal total
            while time.monotonic() < stop:
                r = await client.get(url_of(i))
                r.raise_for_status()
                total += len(r.content)

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        took = time.monotonic() - start
    return total / took, total


def start_static(directory: Path, port: int, name: str) -> subprocess.Popen[bytes]:
    """`python -m http.server` on the image's directory, once it answers."""
    static = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                               str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            httpx.get(f"http://127.0.0.1:{port}/{name}", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return static


def cpu_of(pid: int) -> float:
    """user+system seconds of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------------------------------------ main

async def run(args: argparse.Namespace) -> dict[str, Any]:
    from ecohub.api.app import create_app
    from ecohub.bootstrap import bootstrap
    from ecohub.hub import running_hub
    from ecohub.ota.domain import sign_token
    from ecohub.protocol.messages import firmware_statement
    from ecohub.settings import OtaSettings, Settings

    work = Path(tempfile.mkdtemp(prefix="ecohub-bench-ota-"))
    settings = Settings(data_dir=work / "data", ota=OtaSettings(tick_s=0.5))
    services = bootstrap(settings)
    services.ecosystem.partners.add(name="Cuco", partner_id=PARTNER, country="CN", founded_on="2015-01-01",
                                    actor="bench")
    services.products.import_spec(json.loads(SPEC_FILE.read_text()), model=MODEL, actor="bench",
                                  partner_id=PARTNER, category="plug",
                                  target_markets=["DE"], target_price="19.90", forecast_volume=1000)
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)).decode()
    services.firmware.add_key(PARTNER, pub)
    image = os.urandom(args.image_kb * 1024)
    sha = hashlib.sha256(image).hexdigest()
    sig = base64.b64encode(key.sign(firmware_statement(MODEL, "2.0.0", sha, len(image)))).decode()
    img = services.firmware.upload([image], model=MODEL, version="2.0.0", signature=sig)
    services.firmware.approve(img["image_id"], actor="bench")
    t = time.monotonic()
    creds = [d.to_dict() for d in services.devices.provision(model=MODEL, count=args.devices)]
    print(f"provisioned {len(creds)} devices in {time.monotonic() - t:.1f}s", flush=True)
    trust = {"partner": pub, "brand": services.firmware.brand_public()["public_key"]}
    result: dict[str, Any] = {"devices": args.devices, "processes": args.processes, "image_bytes": len(image),
                              "stages": args.stages, "max_in_flight": args.max_in_flight,
                              "max_per_minute": args.max_per_minute, "device_nice": args.device_nice}
    ctx = mp.get_context("spawn")
    async with running_hub(services, app_factory=create_app, http_port=_free_port(), mqtt_port=_free_port()) as hub:
        nats_pid = int((settings.data_dir / "nats" / "nats-server.pid").read_text())
        out, go = ctx.Queue(), ctx.Event()
        readies, procs = [], []
        per = -(-len(creds) // args.processes)
        for i in range(args.processes):
            ready = ctx.Event()
            p = ctx.Process(target=device_process, args=(creds[i * per:(i + 1) * per], hub.runtime.mqtt_port, trust,
                                                         out, ready, go, args.timeout,
                                                         args.connect_concurrency, args.device_nice), daemon=True)
            p.start()
            readies.append(ready)
            procs.append(p)
        t = time.monotonic()
        while not all(r.is_set() for r in readies):  # noqa: ASYNC110 - multiprocessing events, not asyncio ones
            await asyncio.sleep(0.2)
        print(f"devices connected in {time.monotonic() - t:.1f}s", flush=True)
        hello = [out.get(timeout=60) for _ in procs]
        connect_failed = sum(h["connect_failed"] for h in hello)  # never connected: they stay pending (offline)
        result["connect_failed"] = connect_failed
        print(f"connected {sum(h['connected'] for h in hello)}, failed to connect {connect_failed}", flush=True)
        await asyncio.sleep(2)  # the last online states reach the twins
        cpu0, nats0 = self_cpu(), cpu_of(nats_pid)
        t0 = time.monotonic()
        stages = [int(x) for x in args.stages.split(",")]
        c = await asyncio.to_thread(services.campaigns.create, model=MODEL, version="2.0.0", stages=stages,
                                    threshold=args.threshold, max_in_flight=args.max_in_flight,
                                    max_per_minute=args.max_per_minute)
        cid = c["campaign_id"]
        last = ""
        while True:
            await asyncio.sleep(0.5)
            st = await asyncio.to_thread(services.campaigns.get, cid, devices=0)
            line = f"  {time.monotonic() - t0:6.1f}s stage {st['stage'] + 1} {st['status']} {st['counts']}"
            if line.split("s ", 1)[1] != last:
                print(line, flush=True)
                last = line.split("s ", 1)[1]
            if st["status"] != "running" or time.monotonic() - t0 > args.timeout:
                break
            if connect_failed and not set(st["counts"]) - {"done", "pending"} \
                    and st["counts"].get("pending", 0) == connect_failed and st["stage"] == len(stages) - 1:
                break  # only the units that never connected are left (offline: they would get it on connect)
        took = time.monotonic() - t0
        cpu, nats_cpu = self_cpu() - cpu0, cpu_of(nats_pid) - nats0
        go.set()  # the campaign ended (completed, halted or timed out): the devices report and leave
        # off the event loop: the hub runs in it (a blocking get here once stalled its ingest and HTTP)
        reports = [await asyncio.to_thread(out.get, True, 120) for _ in procs]
        lat = sorted(x for r in reports for x in r["latencies"])
        done = st["counts"].get("done", 0)
        result |= {"status": st["status"], "done": done, "campaign_s": round(took, 2),
                   "offer_to_done_per_s": round(done / took, 1),
                   "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
                   "latency_p99_s": round(lat[int(len(lat) * 0.99) - 1], 3) if lat else None,
                   "hub_cpu_s": round(cpu, 2), "nats_cpu_s": round(nats_cpu, 2),
                   "hub_cpu_ms_per_device": round(1000 * cpu / max(done, 1), 2),
                   "hub_and_nats_cpu_ms_per_device": round(1000 * (cpu + nats_cpu) / max(done, 1), 2),
                   "campaign_image_bytes_per_s": round(done * len(image) / took)}
        if st["status"] != "completed" or st["counts"].get("failed"):  # a completed campaign may have failures too
            failed = await asyncio.to_thread(services.campaigns.get, cid, devices=args.devices)
            why: dict[str, int] = {}
            for d in failed["devices"]:
                if d["state"] == "failed":
                    why[f"{d['code']} {d['message']}"] = why.get(f"{d['code']} {d['message']}", 0) + 1
            print(f"campaign {st['status']}: {st['reason']}; failures {why}", flush=True)
            result |= {"reason": st["reason"], "failures": why}
            behind = {k: v for r in reports for k, v in r["behind"].items()}
            for d in failed["devices"]:
                if d["state"] not in ("done", "failed", "pending") and len(result.setdefault("in_flight", [])) < 20:
                    result["in_flight"].append({"hub": {k: d.get(k) for k in ("did", "state", "progress", "code",
                                                                              "message", "updated_ts")},
                                                "unit": behind.get(d["did"])})
            for row in result.get("in_flight", []):
                print(f"  in flight at the end: {row}", flush=True)
        for p in procs:
            await asyncio.to_thread(p.join, 30)
        # the fleet just went offline: serving is measured once the hub has taken in the N offline states, so that
        # backlog is not in the figure (how long that took is printed as hub_caught_up_s)
        quiet_s = await asyncio.to_thread(wait_all_offline, services, 120.0)
        result["hub_caught_up_s"] = quiet_s
        # serving: the hub's per-device download route ÷ python -m http.server, same client, back to back
        port = _free_port()
        static = await asyncio.to_thread(start_static, settings.data_dir / "firmware" / sha[:2], port, sha)
        try:
            tokens = [sign_token(services.campaigns.token_key, creds[i % len(creds)]["did"], img["image_id"],
                                 int(time.time()) + 3600) for i in range(args.serve_clients)]
            hub_urls = [f"{hub.runtime.http_url}/api/v1/firmware/download/{t}" for t in tokens]
            static_urls = [f"http://127.0.0.1:{port}/{sha}"] * args.serve_clients
            rounds: list[tuple[float, float]] = []
            for _ in range(2):  # interleaved, so a change in the machine's load falls on both
                hub_bps = await asyncio.to_thread(serving_in_a_process, hub_urls, args.serve_seconds)
                static_bps = await asyncio.to_thread(serving_in_a_process, static_urls, args.serve_seconds)
                rounds.append((hub_bps, static_bps))
        finally:
            static.terminate()
            static.wait(timeout=10)
        hub_bps, static_bps = (sum(r[k] for r in rounds) for k in (0, 1))
        result |= {"hub_serve_MBps": round(hub_bps / len(rounds) / 1e6, 1),
                   "static_serve_MBps": round(static_bps / len(rounds) / 1e6, 1),
                   "serve_ratio": round(hub_bps / static_bps, 2),
                   "serve_ratio_rounds": [round(h / st, 2) for h, st in rounds], "serve_clients": args.serve_clients}
    services.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--image-kb", type=int, default=64)
    parser.add_argument("--stages", default="1,10,50,100")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--threshold", type=float, default=10.0, help="failure %% that halts the campaign")
    parser.add_argument("--serve-clients", type=int, default=8)
    parser.add_argument("--connect-concurrency", type=int, default=10, help="connects in flight per process")
    parser.add_argument("--serve-seconds", type=float, default=5.0)
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="the campaign's cap on devices updating at once (default: the hub's ota.max_in_flight)")
    parser.add_argument("--max-per-minute", type=int, default=0, help="the campaign's cap on offers a minute")
    parser.add_argument("--device-nice", type=int, default=10,
                        help="niceness of the device processes (0: same priority as the hub): on one machine the "
                        "simulated fleet's CPU (Ed25519, sha256, HTTP, 10,000 MQTT clients) competes with the hub's")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from natsbench import lift_consumer_limit, machine

    lift_consumer_limit()  # the generated config caps $MQTT_msgs consumers at ~1000 (see bench/natsbench.py)
    logging.basicConfig(level=logging.WARNING)
    print("machine:\n  " + machine(), flush=True)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    print(f"serve ratio {result['serve_ratio']} (target ≥ {TARGET_RATIO})")


if __name__ == "__main__":
    main()
