"""Home Assistant comparison: the ingest load through HA's MQTT integration into its recorder, next to ecohub.

The same load as ``bench/ingest.py`` (D device-SDK devices in a separate process, each message a
``properties_changed`` of two properties: switch status 2.1 and electric power 11.2, QoS 1) is run twice against
an own Mosquitto on a free port (anonymous, no persistence, unlimited queues, as in ``bench/ingest.py``):

* **ecohub**: the IngestWorker persists it (spec validation, twin upsert, telemetry append into SQLite,
  PUBACK after commit) — ``bench/ingest.py``'s ``run_once`` is reused as is; figure = messages/s persisted, and
  telemetry samples/s (two per message);
* **Home Assistant** (pip ``homeassistant`` in its own venv, ``--ha-python``, default ``/tmp/havenv/bin/python``),
  started as ``python -m homeassistant -c <throwaway config>`` with: ``http:`` on a free loopback port, the MQTT
  integration's broker entry in ``.storage/core.config_entries`` (how the UI would store it; discovery off),
  one ``mqtt: sensor:`` per device property (``state_topic: ecohub/<did>/up``, a ``value_template`` picking the
  property out of ``params``, ``qos: 1``, ``force_update: true`` so each report is a state), and ``recorder:``
  on SQLite (``commit_interval`` 1 s; HA's default is 5 s). Figure = rows appearing in HA's ``states`` table per
  second, polled from the SQLite file (read-only) until all 2*N rows are there or the time limit passes.

Printed: ecohub messages/s and samples/s, HA states/s (= samples/s) and messages/s equivalent, and
ecohub / HA (target >= 10x).

Usage::

    python bench/homeassistant.py [--messages 10000] [--devices 20] [--ha-python /tmp/havenv/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (
    HOST,
    BrokerHandle,
    Env,
    Publishers,
    RunResult,
    free_port,
    machine_summary,
    make_env,
    mosquitto_broker,
    print_ingest_details,
    print_run,
    run_once,
    wait_port,
)

from ecohub.settings import IngestSettings

PROPS = {"switch": (2, 1), "power": (11, 2)}  # what each bench message reports


# ----------------------------------------------------------------------------------------- HA config dir


def sensor_yaml(did: str, name: str, siid: int, piid: int) -> str:
    """One MQTT sensor: the property's value out of a properties_changed message on the device's up topic."""
    template = (f"{{% for p in value_json.params if p.siid == {siid} and p.piid == {piid} %}}"
                f"{{{{ p.value }}}}{{% endfor %}}")
    return (f"    - name: \"{did} {name}\"\n"
            f"      unique_id: \"{did}-{siid}-{piid}\"\n"
            f"      state_topic: \"ecohub/{did}/up\"\n"
            f"      value_template: \"{template}\"\n"
            f"      qos: 1\n"
            f"      force_update: true\n")


def write_ha_config(config_dir: Path, *, http_port: int, broker: BrokerHandle, dids: list[str]) -> Path:
    """A throwaway HA config dir: http on loopback, recorder on SQLite, one MQTT sensor per device property."""
    (config_dir / ".storage").mkdir(parents=True, exist_ok=True)
    db = config_dir / "home-assistant_v2.db"
    sensors = "".join(sensor_yaml(did, name, siid, piid) for did in dids for name, (siid, piid) in PROPS.items())
    (config_dir / "configuration.yaml").write_text(
        "homeassistant:\n"
        "  name: ecohub-bench\n  latitude: 52.5\n  longitude: 13.4\n  elevation: 0\n"
        "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: DE\n"
        "http:\n"
        f"  server_host: {HOST}\n  server_port: {http_port}\n"
        "recorder:\n"
        f"  db_url: sqlite:///{db}\n  commit_interval: 1\n  auto_purge: false\n"
        "logger:\n  default: warning\n"
        "mqtt:\n  sensor:\n" + sensors)
    entry = {"entry_id": uuid.uuid4().hex, "version": 1, "minor_version": 1, "domain": "mqtt", "title": "bench",
             "data": {"broker": broker.host, "port": broker.port, "discovery": False},
             "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
             "unique_id": None, "disabled_by": None}
    (config_dir / ".storage" / "core.config_entries").write_text(json.dumps(
        {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}))
    # skip onboarding (no user is needed for a headless run)
    (config_dir / ".storage" / "onboarding").write_text(json.dumps(
        {"version": 4, "minor_version": 1, "key": "onboarding",
         "data": {"done": ["user", "core_config", "analytics", "integration"]}}))
    return db


def count_states(db: Path, prefix: str = "sensor.") -> int:
    """Rows in HA's states table for our sensors (0 while the schema is not there yet)."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
            row = c.execute("SELECT count(*) FROM states s JOIN states_meta m ON s.metadata_id = m.metadata_id "
                            "WHERE m.entity_id LIKE ?", (prefix + "%",)).fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def sensor_entities(db: Path) -> int:
    """How many of our sensor entities the recorder knows."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
            return int(c.execute("SELECT count(*) FROM states_meta WHERE entity_id LIKE 'sensor.%'").fetchone()[0])
    except sqlite3.Error:
        return 0


async def wait_for_sensors(db: Path, count: int, within: float) -> bool:
    """Poll the recorder's database until it knows `count` sensor entities."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if sensor_entities(db) >= count:
            return True
        await asyncio.sleep(0.5)
    return False


def ha_version(python: str) -> str:
    res = subprocess.run([python, "-c", "import homeassistant.const as c; print(c.__version__)"],
                         capture_output=True, text=True, timeout=60, check=False)
    return res.stdout.strip() or f"not importable: {res.stderr.strip()[-200:]}"


# ------------------------------------------------------------------------------------------------ the runs


async def run_ha(env: Env, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """HA + own Mosquitto + the same publishers; states/s recorded."""
    config_dir = tmp / "ha-config"
    dids = [did for did, _ in env.creds]
    out: dict[str, Any] = {"ok": False}
    async with mosquitto_broker(env.workdir, None) as broker:
        http_port = free_port()
        db = write_ha_config(config_dir, http_port=http_port, broker=broker, dids=dids)
        log = (tmp / "ha.log").open("w")
        t_start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(args.ha_python, "-m", "homeassistant", "-c", str(config_dir),
                                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            await wait_port(HOST, http_port, within=args.ha_start_timeout)
            # HA is up once the recorder knows our sensors (they start 'unknown'); the first publish of every
            # device below turns each into a real state
            pubs = Publishers(host=broker.host, port=broker.port, creds=env.creds, messages=args.messages,
                              processes=args.publishers, window=args.window, spec=env.spec)
            try:
                await pubs.start()
                await wait_for_sensors(db, 2 * len(dids), args.ha_start_timeout)
                out["startup_s"] = time.perf_counter() - t_start
                out["entities"] = sensor_entities(db)
                await asyncio.sleep(2.0)  # let the initial 'unknown' states be committed
                base = count_states(db)
                target = base + 2 * args.messages
                t0 = time.perf_counter()
                pubs.go.set()
                series: list[tuple[float, int]] = []
                last = base
                while time.perf_counter() - t0 < args.ha_timeout:
                    await asyncio.sleep(0.25)
                    last = count_states(db)
                    series.append((time.perf_counter() - t0, last - base))
                    if last >= target:
                        break
                seconds = time.perf_counter() - t0
                send_s = await pubs.finished(within=5)
                out.update(ok=last >= target, rows=last - base, target=2 * args.messages, seconds=seconds,
                           send_s=send_s, series=series)
            finally:
                await pubs.close()
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            log.close()
    out["log_tail"] = "\n".join((tmp / "ha.log").read_text(errors="replace").splitlines()[-15:])
    return out


async def bench(args: argparse.Namespace) -> int:
    print(f"Home Assistant comparison: {args.messages} messages (2 properties each) from {args.devices} devices, "
          f"QoS 1, own Mosquitto on a free port")
    print(f"machine: {machine_summary()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not os.path.exists(args.ha_python):  # noqa: ASYNC240 (once, before anything runs)
        print(f"Home Assistant is not installed: {args.ha_python} does not exist "
              "(python3 -m venv /tmp/havenv && /tmp/havenv/bin/pip install homeassistant)")
        return 2
    version = ha_version(args.ha_python)
    print(f"Home Assistant {version} ({args.ha_python})", flush=True)
    with tempfile.TemporaryDirectory(prefix="ecohub-ha-") as tmp_s:
        tmp = Path(tmp_s)
        workdir = tmp / "ecohub"
        workdir.mkdir()
        env = make_env(workdir, args.devices, IngestSettings())
        try:
            eco: RunResult = await run_once(env, mosquitto_broker(workdir, None), ingest=True, args=args)
            print_run(eco)
            print_ingest_details(eco)
        finally:
            env.services.close()
        ha = await run_ha(env, args, tmp)
    if "seconds" not in ha:
        print("Home Assistant did not get ready; the end of its log:\n" + ha.get("log_tail", ""))
        return 1
    ha_states_s = ha["rows"] / ha["seconds"] if ha["seconds"] else 0.0
    eco_samples_s = 2 * eco.rate
    print(f"  Home Assistant: started and knew {ha['entities']} sensors after {ha['startup_s']:.1f} s; "
          f"{ha['rows']}/{ha['target']} states recorded in {ha['seconds']:.1f} s = {ha_states_s:.0f} states/s "
          f"(publishers got all PUBACKs after {ha['send_s']:.2f} s){'' if ha['ok'] else '  TIME LIMIT'}")
    marks = [f"{t:.0f}s:{n}" for t, n in ha["series"][::max(1, len(ha["series"]) // 12)]]
    print(f"    states recorded over time: {' '.join(marks)}")
    print()
    print("| system | messages/s | property samples/s | ratio ecohub / HA |")
    print("|--------|------------|--------------------|-------------------|")
    ratio = eco_samples_s / ha_states_s if ha_states_s else float("inf")
    print(f"| ecohub ingest (1 worker, SQLite) | {eco.rate:.0f} | {eco_samples_s:.0f} | |")
    print(f"| Home Assistant {version} (MQTT sensors + recorder, SQLite) | {ha_states_s / 2:.0f} | "
          f"{ha_states_s:.0f} | {ratio:.1f}x |")
    print(f"\necohub / Home Assistant = {ratio:.1f}x (target >= 10x): {'MET' if ratio >= 10 else 'NOT MET'}")
    if not ha["ok"]:
        print(f"NOTE: HA recorded only {ha['rows']} of {ha['target']} states within {args.ha_timeout:.0f} s; "
              "the rate is over the time limit")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share the cores)")
    return 0 if ratio >= 10 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000, help="messages per run (default 10000)")
    parser.add_argument("--devices", type=int, default=20, help="devices publishing (default 20)")
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes (default 1)")
    parser.add_argument("--window", type=int, default=50, help="unacknowledged publishes per device (default 50)")
    parser.add_argument("--ha-python", default="/tmp/havenv/bin/python", help="python of HA's own venv")
    parser.add_argument("--ha-start-timeout", type=float, default=180.0, help="seconds for HA to start")
    parser.add_argument("--ha-timeout", type=float, default=120.0, help="seconds HA may take to record the load")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed for the ecohub run")
    args = parser.parse_args(argv)
    args.profile, args.profile_lines = False, 0  # what bench/ingest.py's run_once expects
    if args.messages < 1 or args.devices < 1 or args.publishers < 1 or args.publishers > args.devices:
        parser.error("--messages and --devices must be >= 1, and 1 <= --publishers <= --devices")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
