"""Default `ecohub up` (NATS) persisted msg/s ÷ the old amqtt default (commit bd2a9af), same load, same run.

Both hubs are run as users run them, black box, through their own CLI on a fresh data dir each: `ecohub init`
(today's hub only; bd2a9af has none), `ecohub spec import cuco.plug.v3.json --model cuco.plug.v3` (today's hub
with `--category --market --price --forecast`: provisioning needs a product past `defined`),
`ecohub device provision --count D --json`, then `ecohub up --data-dir … --http-port <free> --mqtt-port <free>`
(SQLite, one process: NATS child + callout + one ingest worker now; amqtt in-process + one ingest worker then).
The load is the same for both: one `mosquitto_pub -q 1 -l` process per device (did/secret), N `properties_changed`
messages of 2 properties. Figure = inbox rows committed in `cell-eu.db` per second, from the start of the load
until the N-th row (or until the count stopped growing for `--settle` s: amqtt is known to lose acknowledged
messages, issue 13; the lost count is printed).

The old code must be installed in its own venv (it brings amqtt 0.12)::

    git -C /work/main worktree add /work/wt-old bd2a9af
    python3 -m venv /tmp/oldvenv && /tmp/oldvenv/bin/pip install -e /work/wt-old

Usage::

    python bench/vs_amqtt.py [--old-ecohub /tmp/oldvenv/bin/ecohub] [--messages 20000] [--devices 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from natsbench import DEFINITION, HOST, MODEL, SPEC_FILE, MosqLoad, loadavg, machine, mmm

ROOT = Path(__file__).resolve().parent.parent
NEW = [sys.executable, "-c", "import sys; from ecohub.cli.app import main; sys.argv[0] = 'ecohub'; sys.exit(main())"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cli(cmd: list[str], data_dir: Path, *args: str, env: dict[str, str]) -> str:
    res = subprocess.run([*cmd, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, env=env,
                         timeout=300)
    if res.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr[-800:]}")
    return res.stdout


def inbox(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return int(c.execute("SELECT count(*) FROM inbox").fetchone()[0])
    except sqlite3.Error:
        return -1


async def one(name: str, cmd: list[str], env: dict[str, str], workdir: Path, args: argparse.Namespace) -> float:
    data = workdir / name
    definition: list[str] = []
    if cmd is NEW:  # today's hub: data commands need `ecohub init`, provisioning a defined product (bd2a9af: neither)
        cli(cmd, data, "init", env=env)
        definition = ["--category", DEFINITION["category"], *(f"--market={m}" for m in DEFINITION["target_markets"]),
                      "--price", DEFINITION["target_price"], "--forecast", str(DEFINITION["forecast_volume"])]
    cli(cmd, data, "spec", "import", str(SPEC_FILE), "--model", MODEL, *definition, env=env)
    devices = json.loads(cli(cmd, data, "device", "provision", "--model", MODEL, "--count", str(args.devices),
                             "--json", env=env))
    creds = [(d["did"], d["secret"]) for d in devices]
    http, mqtt = free_port(), free_port()
    log = (workdir / f"{name}.log").open("w")
    proc = subprocess.Popen(  # noqa: ASYNC220 (once per run, before the timed window)
        [*cmd, "up", "--data-dir", str(data), "--http-port", str(http), "--mqtt-port", str(mqtt)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(Exception):
                if httpx.get(f"http://{HOST}:{http}/api/v1/health", timeout=1).status_code == 200:  # noqa: ASYNC210
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: ecohub up did not become healthy (see {log.name})")
            await asyncio.sleep(0.2)
        db = data / "cell-eu.db"
        load = MosqLoad(HOST, mqtt, creds, workdir, inflight=args.inflight)
        await load.run(load.prepare(2 * len(creds)))  # warm-up
        await asyncio.sleep(1.0)
        base = inbox(db)
        files = load.prepare(args.messages)
        t0 = time.perf_counter()
        run = asyncio.create_task(load.run(files))
        last_n, last_t = base, t0
        while True:
            await asyncio.sleep(0.05)
            n = inbox(db)
            now = time.perf_counter()
            if n > last_n:
                last_n, last_t = n, now
            if n >= base + args.messages or (run.done() and now - last_t > args.settle) or now - t0 > args.timeout:
                break
        send_s = await run
        stored = last_n - base
        rate = stored / (last_t - t0)
        lost = args.messages - stored
        print(f"  [{name}, load {loadavg()}] persisted {stored}/{args.messages} in {last_t - t0:.2f} s = {rate:7.0f} "
              f"msg/s (all PUBACKs after {send_s:.2f} s){f'  — {lost} ACKNOWLEDGED BUT NOT STORED' if lost else ''}",
              flush=True)
        return rate
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


async def bench(args: argparse.Namespace) -> int:
    print(f"ecohub up (NATS) vs ecohub up at bd2a9af (amqtt): {args.messages} QoS 1 messages from {args.devices} "
          f"devices (one mosquitto_pub each, {args.inflight} in flight), {args.repeats} repeats")
    print("machine:\n  " + machine(), flush=True)
    new_env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    old_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    old_cmd = [args.old_ecohub]
    new_rates, old_rates, ratios = [], [], []
    with tempfile.TemporaryDirectory(prefix="ecohub-bench-vs-") as tmp:
        for k in range(args.repeats):
            w = Path(tmp) / str(k)
            w.mkdir()
            order = [("old-amqtt", old_cmd, old_env), ("new-nats", NEW, new_env)]
            if k % 2:
                order.reverse()
            got = {name: await one(name, cmd, env, w, args) for name, cmd, env in order}
            new_rates.append(got["new-nats"])
            old_rates.append(got["old-amqtt"])
            ratios.append(got["new-nats"] / got["old-amqtt"])
            print(f"  repeat {k + 1}: NATS ÷ amqtt = {ratios[-1]:.1f}x", flush=True)
    print("\n| figure | min / median / max |\n|---|---|")
    print(f"| `ecohub up` NATS persisted msg/s | {mmm(new_rates)} |")
    print(f"| `ecohub up` amqtt (bd2a9af) persisted msg/s | {mmm(old_rates)} |")
    print(f"| NATS ÷ amqtt | {mmm(ratios, '{:.1f}')} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("--old-ecohub", default="/tmp/oldvenv/bin/ecohub", help="the ecohub CLI of commit bd2a9af")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--inflight", type=int, default=100, help="unacknowledged QoS 1 publishes per device")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="stop counting after this long without growth")
    parser.add_argument("--timeout", type=float, default=120.0)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
