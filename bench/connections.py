"""Connection benchmark: simulated devices held by one managed Mosquitto (dynamic security) + one ecohub hub.

What runs (all on loopback, free ports, bounded in count and time):

* an ecohub hub (``running_hub(..., broker="mosquitto")``: managed Mosquitto 2 with the dynamic-security plugin,
  ingest worker, command service, HTTP API) in this process;
* D devices provisioned in ecohub's database, each with its own dynsec client (username = client id = did) and
  own-topics role. Provisioning 20k devices through the adapter's control topic is O(n²) in Mosquitto 2.0
  (the plugin rewrites its whole JSON file after every command), so the devices are written into the dynsec
  JSON before the broker starts (what a bulk import would do), and the adapter's per-device cost is measured
  separately at several config sizes;
* P load processes, each holding D/P device-SDK ``Device`` connections (gmqtt, MQTT 3.1.1, did/secret auth,
  subscribe to ``down``, retained online state), connecting at most C at a time.

Printed: connected devices, connect rate (devices/s from "go" to the last CONNACK+SUBSCRIBE), how many are still
connected after the hold (30 s by default, also counted as TCP connections of the broker process), the RSS of
mosquitto, the hub process and each load process, and the adapter's provisioning rate by config size.

Usage::

    python bench/connections.py [--devices 19900] [--processes 4] [--concurrency 100] [--hold 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import psutil

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.mosquitto import MosquittoBroker, device_acls, device_role, hash_password
from ecohub.hub import running_hub
from ecohub.sdk import device as device_module
from ecohub.sdk.device import Device
from ecohub.settings import Settings
from ecohub.spec import compile_spec, parse_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import CELL, HOST, MODEL, SPEC_FILE, free_port, machine_summary

MiB = 1024 * 1024


def raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (raising the hard limit needs CAP_SYS_RESOURCE)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_mib(pid: int | None) -> float:
    """Resident set size of a process in MiB (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        return psutil.Process(pid).memory_info().rss / MiB
    except psutil.Error:
        return 0.0


def broker_connections(pid: int | None, port: int) -> int:
    """ESTABLISHED TCP connections the broker holds on its MQTT port."""
    if pid is None:
        return 0
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port)


def cpu_seconds(mpid: int | None, load_pids: dict[int, int]) -> dict[str, float]:
    """User+system CPU seconds of mosquitto, this (hub) process and the load processes."""
    out: dict[str, float] = {}
    for name, pid in [("mosquitto", mpid), ("hub", os.getpid()), *((f"load-{k}", p) for k, p in load_pids.items())]:
        with contextlib.suppress(psutil.Error, TypeError):
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
    return out


def mosquitto_pid() -> int | None:
    """The managed mosquitto, a child of this process."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "mosquitto":
                return child.pid
    return None


# ----------------------------------------------------------------------------------- dynsec (bulk and API)


def dynsec_entries(creds: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The dynsec clients and roles the adapter's ``device_added`` would create, as JSON objects."""
    clients, roles = [], []
    for did, secret in creds:
        role = device_role(did)
        clients.append({"username": did, "clientid": did, **hash_password(secret), "roles": [{"rolename": role}]})
        roles.append({"rolename": role, "acls": device_acls(did)})
    return clients, roles


def prewrite_dynsec(work_dir: Path, creds: list[tuple[str, str]]) -> int:
    """Write a dynsec JSON holding the devices; ManagedMosquitto keeps them and adds the service user. Bytes."""
    work_dir.mkdir(parents=True, exist_ok=True)
    clients, roles = dynsec_entries(creds)
    config = {"clients": clients, "roles": roles, "groups": [],
              "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                                   "unsubscribe": True}}
    path = work_dir / "dynamic-security.json"
    path.write_text(json.dumps(config))
    return path.stat().st_size


async def adapter_rate(size: int, sample: int, budget_s: float, tmp: Path) -> tuple[int, float, float]:
    """Time ``device_added`` (4 dynsec commands in one message) on a broker already holding `size` devices.

    Returns (devices added, seconds, JSON bytes). Stops after `budget_s` even if fewer than `sample` were added.
    """
    work = tmp / f"dynsec-{size}"
    creds = [(f"bulk{i:06d}", "s" * 43) for i in range(size)]
    prewrite_dynsec(work, creds)
    async with MosquittoBroker(host=HOST, port=free_port(), service_password="bench-service-password",
                               work_dir=work, persistence=False) as broker:
        t0 = time.perf_counter()
        done = 0
        for i in range(sample):
            await broker.device_added(f"new{i:06d}", "s" * 43)
            done += 1
            if time.perf_counter() - t0 > budget_s:
                break
        seconds = time.perf_counter() - t0
    return done, seconds, (work / "dynamic-security.json").stat().st_size


# -------------------------------------------------------------------------------------------- load process


@dataclass(frozen=True, slots=True)
class LoadJob:
    """One load process: its devices, where to connect, how many connects in flight, how long to hold."""

    index: int
    host: str
    port: int
    creds: list[tuple[str, str]]
    concurrency: int
    hold_s: float
    keepalive: int
    spec: dict[str, Any]
    profile: bool = False


async def _load(job: LoadJob, go: MpEvent, stop: MpEvent, out: Queue[Any]) -> None:
    logging.getLogger("gmqtt").setLevel(logging.CRITICAL)
    spec = parse_spec(job.spec)
    compiled = device_module.compile_spec(spec)
    # every Device compiles its spec; 5 000 identical compilations per process cost minutes on a loaded machine
    device_module.compile_spec = lambda s: compiled if s is spec else compile_spec(s)  # type: ignore[attr-defined]
    devices = [Device(did=did, secret=secret, spec=spec, host=job.host, port=job.port, keepalive=job.keepalive)
               for did, secret in job.creds]
    out.put(("ready", job.index, len(devices), os.getpid()))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, go.wait)
    gate = asyncio.Semaphore(job.concurrency)
    t_start = time.monotonic()
    done_at: list[float] = []
    errors: dict[str, int] = {}

    async def connect(dev: Device) -> None:
        async with gate:
            try:
                await dev.connect()
                done_at.append(time.monotonic())
            except Exception as err:  # count and go on: the figure is how many made it
                key = str(err).split(": ", 1)[-1][:80]
                errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(connect(d) for d in devices))
    out.put(("connected", job.index, len(done_at), sum(errors.values()), t_start, max(done_at, default=t_start),
             sorted(done_at), errors))
    t_hold = time.monotonic()
    while time.monotonic() - t_hold < job.hold_s:
        await asyncio.sleep(min(5.0, job.hold_s))
        out.put(("holding", job.index, sum(1 for d in devices if d.connected.is_set()), time.monotonic() - t_hold))
    out.put(("held", job.index, sum(1 for d in devices if d.connected.is_set())))
    await loop.run_in_executor(None, stop.wait, 60)


def load_main(job: LoadJob, go: MpEvent, stop: MpEvent, out: Queue[Any]) -> None:
    """Entry point of a load process; exits without a clean-up: the kernel drops the TCP connections (the broker
    then publishes each device's will), which is faster and quieter than thousands of gmqtt disconnects."""
    raise_fd_limit()
    prof = cProfile.Profile() if job.profile else None
    try:
        if prof is not None:
            prof.enable()
        asyncio.run(_load(job, go, stop, out))
        if prof is not None:
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(20)
            out.put(("profile", job.index, buf.getvalue()))
    except BaseException as err:
        out.put(("error", job.index, repr(err)))
        raise
    finally:
        out.close()
        out.join_thread()
        os._exit(0)


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    """`n` nearly equal interleaved slices."""
    for k in range(n):
        yield items[k::n]


# ---------------------------------------------------------------------------------------------- the bench


def provision(services: Services, count: int) -> list[tuple[str, str]]:
    """Devices in ecohub's database (no adapter watching yet, so no dynsec commands)."""
    creds: list[tuple[str, str]] = []
    while len(creds) < count:
        batch = services.devices.provision(model=MODEL, count=min(10_000, count - len(creds)))
        creds.extend((d.did, d.secret) for d in batch)
    return creds


async def bench(args: argparse.Namespace) -> int:
    soft, hard = raise_fd_limit()
    print(f"ecohub connection benchmark: {args.devices} devices in {args.processes} load process(es), "
          f"{args.concurrency} connects in flight in total, hold {args.hold:.0f} s")
    print(f"machine: {machine_summary()}; RLIMIT_NOFILE {soft}/{hard} (per process); "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.devices + 64 > hard:
        print(f"NOTE: the broker holds one fd per device and cannot raise its hard fd limit ({hard}) here, "
              f"so at most ~{hard - 64} devices fit in one Mosquitto process on this machine")
    spec = json.loads(SPEC_FILE.read_text())
    rc = 0
    with tempfile.TemporaryDirectory(prefix="ecohub-conn-") as tmp_s:
        tmp = Path(tmp_s)
        # 1. the adapter's provisioning cost by dynsec config size (separate brokers, bounded)
        adapter_rows = []
        for size in args.dynsec_sizes:
            added, secs, size_b = await adapter_rate(size, args.dynsec_sample, args.dynsec_budget, tmp)
            adapter_rows.append((size, added, secs, size_b))
            print(f"  adapter device_added on a broker holding {size:>6} devices ({size_b / MiB:5.1f} MiB JSON): "
                  f"{added} in {secs:.2f} s = {added / secs:6.1f} devices/s", flush=True)

        # 2. the hub, the devices, the load
        settings = Settings(data_dir=tmp / "data", cells=[CELL], default_cell=CELL)
        services = bootstrap(settings)
        try:
            services.products.import_spec(spec, model=MODEL, actor="bench")
            t = time.perf_counter()
            creds = provision(services, args.devices)
            t_db = time.perf_counter() - t
            t = time.perf_counter()
            size_b = prewrite_dynsec(settings.data_dir / "mosquitto", creds)
            t_json = time.perf_counter() - t
            print(f"  provisioned {len(creds)} devices in ecohub's database in {t_db:.1f} s "
                  f"({len(creds) / t_db:.0f}/s); dynsec JSON written in {t_json:.1f} s ({size_b / MiB:.1f} MiB)",
                  flush=True)
            mqtt_port = free_port()
            t = time.perf_counter()
            async with running_hub(services, app_factory=create_app,
                                   http_port=free_port(), mqtt_port=mqtt_port, broker="mosquitto"):
                t_up = time.perf_counter() - t
                mpid = mosquitto_pid()
                print(f"  hub up with managed Mosquitto (pid {mpid}) on 127.0.0.1:{mqtt_port} in {t_up:.1f} s; "
                      f"RSS mosquitto {rss_mib(mpid):.0f} MiB, hub {rss_mib(os.getpid()):.0f} MiB", flush=True)
                rc = await run_load(args, services, creds, spec, mqtt_port, mpid)
                if args.full_size_sample:
                    # the adapter at full size, through the real hook (DeviceService → MosquittoBroker, blocking)
                    t = time.perf_counter()
                    try:
                        await asyncio.to_thread(services.devices.provision, model=MODEL, count=args.full_size_sample)
                        secs = time.perf_counter() - t
                        print(f"  provisioning {args.full_size_sample} more device(s) through the hub's adapter with "
                              f"{len(creds)} in dynsec: {secs:.2f} s = {args.full_size_sample / secs:.2f} devices/s")
                    except Exception as err:
                        print(f"  provisioning through the hub's adapter with {len(creds)} in dynsec failed after "
                              f"{time.perf_counter() - t:.1f} s: {err!r}")
        finally:
            services.close()
    return rc


async def run_load(args: argparse.Namespace, services: Services, creds: list[tuple[str, str]],
                   spec: dict[str, Any], port: int, mpid: int | None) -> int:
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    out: Queue[Any] = ctx.Queue()
    per_proc = max(1, args.concurrency // args.processes)
    procs = [ctx.Process(target=load_main, name=f"bench-load-{k}", daemon=True,
                         args=(LoadJob(k, HOST, port, part, per_proc, args.hold, args.keepalive, spec,
                                       args.profile and k == 0), go, stop, out))
             for k, part in enumerate(chunks(creds, args.processes))]
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + args.timeout

    async def get(kind: str) -> list[Any]:
        got = []
        while len(got) < len(procs):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waiting for {kind!r}: {len(got)}/{len(procs)} load processes answered")
            try:
                msg = await loop.run_in_executor(None, out.get, True, min(left, 5.0))
            except Exception:
                continue
            if msg[0] == "error":
                raise RuntimeError(f"load process {msg[1]} failed: {msg[2]}")
            if msg[0] == "holding":
                continue
            if msg[0] == "profile":
                print(f"=== cProfile of load process {msg[1]} (tottime) ===\n{msg[2]}")
                continue
            if msg[0] != kind:
                raise RuntimeError(f"expected {kind!r}, got {msg[0]!r}")
            got.append(msg)
        return got

    worker = services.workers[0]
    try:
        for p in procs:
            p.start()
        ready = await get("ready")
        deadline = time.monotonic() + args.timeout + args.hold  # from go on
        load_pids = {m[1]: m[3] for m in ready}
        rss_idle = {k: rss_mib(pid) for k, pid in load_pids.items()}
        stored0 = worker.stats.stored
        cpu0 = cpu_seconds(mpid, load_pids)
        t_go = time.monotonic()
        go.set()
        connected = await get("connected")
        t_conn = max(m[5] for m in connected) - t_go
        cpu1 = cpu_seconds(mpid, load_pids)
        cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
        ok = sum(m[2] for m in connected)
        failed = sum(m[3] for m in connected)
        errors: dict[str, int] = {}
        for m in connected:
            for k, v in m[7].items():
                errors[k] = errors.get(k, 0) + v
        times = sorted(t for m in connected for t in m[6])
        rate = ok / t_conn if t_conn > 0 else 0.0
        # the connect rate over time (per second after go), to show whether it is flat or degrades
        per_s: dict[int, int] = {}
        for ts in times:
            per_s[int(ts - t_go)] = per_s.get(int(ts - t_go), 0) + 1
        at_connect = {"mosquitto": rss_mib(mpid), "hub": rss_mib(os.getpid()),
                      **{f"load-{k}": rss_mib(pid) for k, pid in load_pids.items()}}
        held_by_broker = broker_connections(mpid, port)
        print(f"  connected {ok}/{len(creds)} devices in {t_conn:.2f} s = {rate:.0f} devices/s "
              f"({failed} failed{': ' + json.dumps(errors) if errors else ''}); broker holds {held_by_broker} "
              f"TCP connections on its port", flush=True)
        print(f"  connects per second after go: {json.dumps(dict(sorted(per_s.items())))}", flush=True)
        print(f"  CPU seconds used while connecting ({t_conn:.2f} s wall, 2 cores = {2 * t_conn:.2f} CPU-s): "
              + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()), flush=True)
        held = await get("held")
        still = sum(m[2] for m in held)
        held_by_broker_end = broker_connections(mpid, port)
        at_end = {"mosquitto": rss_mib(mpid), "hub": rss_mib(os.getpid()),
                  **{f"load-{k}": rss_mib(pid) for k, pid in load_pids.items()}}
        for _ in range(40):  # give the ingest worker up to 10 s more to store every online state
            if worker.stats.stored - stored0 >= ok:
                break
            await asyncio.sleep(0.25)
        online_stored = worker.stats.stored - stored0
        log_path = services.settings.data_dir / "mosquitto" / "mosquitto.log"
        drops = [line.split(": ", 1)[-1] for line in log_path.read_text(errors="replace").splitlines()
                 if "are being dropped" in line] if log_path.exists() else []
        if drops:
            print(f"  WARNING: Mosquitto dropped messages (max_queued_messages of the managed config): {drops[:3]}")
        print(f"  after {args.hold:.0f} s: {still} devices still connected (devices' view), broker holds "
              f"{held_by_broker_end} TCP connections; hub stored {online_stored} messages meanwhile "
              f"(retained online states)", flush=True)
        print()
        print("| process | RSS before go (MiB) | RSS all connected (MiB) | RSS after hold (MiB) | per device (KiB) |")
        print("|---------|---------------------|-------------------------|----------------------|------------------|")
        for name in at_end:
            before = rss_idle.get(int(name.split("-")[1]), 0.0) if name.startswith("load-") else float("nan")
            n = len(creds) / len(procs) if name.startswith("load-") else len(creds)
            print(f"| {name} | {before:.0f} | {at_connect[name]:.0f} | {at_end[name]:.0f} | "
                  f"{at_end[name] * 1024 / n:.1f} |")
        print()
        target = ok >= 20_000 and rate >= 1000
        print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share the cores)")
        print(f"summary: {ok} connected (target 20000), {rate:.0f} connects/s (target 1000), "
              f"{still} still connected after {args.hold:.0f} s -> {'MET' if target else 'NOT MET'}")
        return 0 if still == ok and failed == 0 else 1
    finally:
        stop.set()
        if args.profile:
            with contextlib.suppress(Exception):
                msg = await loop.run_in_executor(None, out.get, True, 20)
                if msg[0] == "profile":
                    print(f"=== cProfile of load process {msg[1]} (tottime) ===\n{msg[2]}")
        go.set()
        for p in procs:
            if p.pid is None:
                continue
            await loop.run_in_executor(None, p.join, 20)
            if p.is_alive():
                p.terminate()
                await loop.run_in_executor(None, p.join, 5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=19_900, help="devices to connect (default 19900)")
    parser.add_argument("--processes", type=int, default=4, help="load processes (default 4)")
    parser.add_argument("--concurrency", type=int, default=100, help="connects in flight, all processes together")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold the connections (default 30)")
    parser.add_argument("--keepalive", type=int, default=30, help="device MQTT keepalive (default 30 s)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed for building the devices, and again for connecting (default 300)")
    parser.add_argument("--dynsec-sizes", type=int, nargs="*", default=[0, 1000, 5000],
                        help="dynsec config sizes at which to time the adapter's device_added")
    parser.add_argument("--dynsec-sample", type=int, default=20, help="devices added per size (default 20)")
    parser.add_argument("--dynsec-budget", type=float, default=8.0, help="seconds per size at most (default 8)")
    parser.add_argument("--full-size-sample", type=int, default=1,
                        help="devices provisioned through the hub's adapter after the load (default 1; 0 = skip)")
    parser.add_argument("--profile", action="store_true", help="cProfile load process 0 and print its top functions")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.processes < 1 or args.concurrency < args.processes:
        parser.error("--devices and --processes must be >= 1 and --concurrency >= --processes")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
