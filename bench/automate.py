"""Automation benchmark: ingest rate with 1,000 active rules ÷ without, on the real hub path, in the same run.

Two runs, each on a fresh data dir and a real hub (`running_hub`: the supervised nats-server, ingest worker,
commands, automation engine, API) on free ports. D devices (one `mosquitto_pub -q 1 -l` process each, did/secret
through the callout; `bench/natsbench.py`) publish N QoS 1 `properties_changed` messages (switch 2.1 and electric
power 11.2). The devices are bound to homes of
one user; in the second run those homes hold R enabled rules: each triggers when a device's power crosses a
threshold (so every message is looked up and most rules fire about once per 1,000 messages), checks that the
device's switch is on, and switches the charging protection (4.1) of another device of the home through a real
command (the `mosquitto_pub` devices do not subscribe to `down`, so those commands time out: the engine's
snapshot counts them; the action runner waits on them off the ingest path).
Rate = N / (time until the worker stored N more messages).

Usage::

    python bench/automate.py [--messages N] [--devices D] [--rules R] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.ingest import IngestWorker
from ecohub.hub import running_hub
from ecohub.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from natsbench import CELL, DEFINITION, MODEL, SPEC_FILE, MosqLoad, machine, mmm, wait_until

from ecohub.hub import free_port

PASSWORD = "bench password 123"
RULES_PER_HOME = 200


def setup(workdir: Path, devices: int, rules: int) -> tuple[Services, list[tuple[str, str]]]:
    """A data dir with the product, D provisioned devices bound to homes of one user, and R rules over them."""
    services = bootstrap(Settings(data_dir=workdir / "data", cells=[CELL], default_cell=CELL))
    services.products.import_spec(json.loads(SPEC_FILE.read_text()), model=MODEL, actor="bench", **DEFINITION)
    provisioned = services.devices.provision(model=MODEL, count=devices)
    home = services.home
    home.accounts.signup(email="bench@example.org", password=PASSWORD, country="DE")
    p = home.accounts.authenticate(home.accounts.signin(email="bench@example.org", password=PASSWORD)["access_token"])
    homes = max(1, -(-rules // RULES_PER_HOME))
    per_home = -(-devices // homes)
    groups = [provisioned[i:i + per_home] for i in range(0, devices, per_home)]
    for group in groups:
        home_id = home.homes.create(p, "bench")["home_id"]
        for d in group:
            home.bindings.claim(p, home_id, did=d.did, code=d.bind_code)
        group_rules = rules // len(groups)
        for i in range(group_rules):
            src, dst = group[i % len(group)], group[(i + 1) % len(group)]
            services.automations.create(p, home_id, {
                "name": f"rule {i}",
                "triggers": [{"type": "property", "did": src.did, "prop": "11.2", "op": ">",
                              "value": float((i * 37) % 1000)}],
                "conditions": {"all": [{"did": src.did, "prop": "2.1", "op": "==", "value": True},
                                       {"time": {"after": "00:00", "before": "23:59"}}]},
                "actions": [{"type": "set", "did": dst.did, "values": {"4.1": i % 2 == 0}}],
            })
    return services, [(d.did, d.secret) for d in provisioned]


async def measure(services: Services, creds: list[tuple[str, str]], args: argparse.Namespace,
                  workdir: Path) -> dict[str, Any]:
    """Run a hub, let the devices publish, time N messages stored."""
    async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()) as hub:
        worker = next(w for w in hub.workers if isinstance(w, IngestWorker))
        engine = hub.automations.engine
        load = MosqLoad("127.0.0.1", hub.runtime.mqtt_port or 0, creds, workdir, inflight=args.window)
        await load.run(load.prepare(2 * len(creds)))  # warm-up
        if not await wait_until(lambda: worker.stats.stored >= 2 * len(creds), within=30):
            raise RuntimeError("the warm-up messages did not reach the ingest worker")
        base = worker.stats.stored
        files = load.prepare(args.messages)
        t0 = time.perf_counter()
        run = asyncio.create_task(load.run(files))
        ok = await wait_until(lambda: worker.stats.stored >= base + args.messages, within=args.timeout, step=0.005)
        seconds = time.perf_counter() - t0
        done = worker.stats.stored - base
        await run
        await asyncio.sleep(1.0)  # let the last firings finish and be recorded before the hub stops
        snap = engine.snapshot() if engine is not None else {}
    return {"done": done, "seconds": seconds, "rate": done / seconds, "timed_out": not ok, "engine": snap}


async def bench(args: argparse.Namespace) -> int:
    print(f"automation benchmark: {args.messages} messages from {args.devices} devices, {args.rules} rules, "
          f"{args.repeats} repeats")
    print("machine:\n  " + machine(), flush=True)
    ratios, rates = [], {"without": [], "with": []}
    timed_out = False
    with tempfile.TemporaryDirectory(prefix="ecohub-bench-automate-") as tmp:
        for k in range(args.repeats):
            got = {}
            for label, rules in (("without", 0), ("with", args.rules)):
                workdir = Path(tmp) / f"{label}-{k}"
                t = time.perf_counter()
                services, creds = setup(workdir, args.devices, rules)
                setup_s = time.perf_counter() - t
                try:
                    r = await measure(services, creds, args, workdir)
                finally:
                    services.close()
                got[label] = r["rate"]
                rates[label].append(r["rate"])
                timed_out |= r["timed_out"]
                print(f"  [#{k + 1}] {label} rules: {r['done']}/{args.messages} msgs in {r['seconds']:.2f} s = "
                      f"{r['rate']:.0f} msg/s{'  TIMEOUT' if r['timed_out'] else ''} (setup {setup_s:.1f} s)",
                      flush=True)
                if rules:
                    print(f"    engine: {json.dumps(r['engine'])}")
            ratios.append(got["with"] / got["without"])
    print(f"\n| figure | min / median / max |\n|---|---|\n| without rules msg/s | {mmm(rates['without'])} |\n"
          f"| with {args.rules} rules msg/s | {mmm(rates['with'])} |\n"
          f"| with ÷ without (target >= 0.9) | {mmm(ratios, '{:.2f}')} |")
    return 0 if min(ratios) >= 0.9 and not timed_out else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100, help="unacknowledged publishes per device")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
