"""Home Assistant comparison on the NATS hub: ecohub ingest ÷ HA's MQTT integration → recorder, same broker, same load.

Each repeat, against the same device plane (the hub's supervised nats-server with MQTT, auth callout, ingest's
durable; `hub.enter_plane`, free ports) and the same load (D devices, one `mosquitto_pub -q 1 -l` process each,
did/secret through the callout, N `properties_changed` messages of 2 properties: switch 2.1 and electric power 11.2):

* **ecohub**: one ingest worker process (`WorkerPool`, what `ecohub ingest` runs) persists the load into SQLite
  (spec validation, inbox dedup row, twin upsert, 2 telemetry rows per message): messages/s and samples/s;
* **Home Assistant** (pip ``homeassistant`` in its own venv, ``--ha-python``, default ``/tmp/havenv/bin/python``)
  started as ``python -m homeassistant -c <throwaway config>`` with: ``http:`` on a free loopback port, the MQTT
  integration's broker entry in ``.storage/core.config_entries`` pointing at the hub's NATS MQTT port as the hub's
  service user (what the UI would store; discovery off), one ``mqtt: sensor:`` per device property
  (``state_topic: ecohub/<did>/up``, a ``value_template`` picking the property out of ``params``, ``qos: 1``,
  ``force_update: true`` so each report is a state), and ``recorder:`` on SQLite (``commit_interval`` 1 s; HA's
  default is 5 s). Figure = rows appearing in HA's ``states`` table per second (= property samples/s), polled
  read-only from its SQLite file, from the start of the load until all 2*N rows are there.
HA is started for its phase only (it would otherwise also receive the ecohub phase's load).

Usage::

    python bench/homeassistant.py [--messages 10000] [--devices 20] [--repeats 3] [--ha-python /tmp/havenv/bin/python]
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
from ingest import ecohub
from natsbench import HOST, MosqLoad, loadavg, machine, make_env, mmm, plane

from ecohub.connect.domain import SERVICE_USER


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def wait_port(host: str, port: int, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _r, w = await asyncio.open_connection(host, port)
            w.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {within:.0f} s") from None
            await asyncio.sleep(0.2)


HA_QOS = [1]  # the sensors' subscription QoS (--ha-qos)
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
            f"      qos: {HA_QOS[0]}\n"
            f"      force_update: true\n")


def write_ha_config(config_dir: Path, *, http_port: int, broker: tuple[str, int, str], dids: list[str]) -> Path:
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
             "data": {"broker": broker[0], "port": broker[1], "username": SERVICE_USER, "password": broker[2],
                      "discovery": False},
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


async def run_ha(broker: tuple[str, int, str], load: MosqLoad, dids: list[str], args: argparse.Namespace,
                 tmp: Path) -> dict[str, Any]:
    """HA on the hub's broker, the same load; states/s recorded."""
    config_dir = tmp / f"ha-config-{uuid.uuid4().hex[:6]}"
    out: dict[str, Any] = {"ok": False}
    http_port = free_port()
    db = write_ha_config(config_dir, http_port=http_port, broker=broker, dids=dids)
    log_path = config_dir / "ha.log"
    log = log_path.open("w")
    t_start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(args.ha_python, "-m", "homeassistant", "-c", str(config_dir),
                                                stdout=log, stderr=subprocess.STDOUT)
    try:
        await wait_port(HOST, http_port, within=args.ha_start_timeout)
        # the sensors start 'unknown'; a warm-up report of every device turns each into a real state
        await load.run(load.prepare(2 * len(dids)))
        if not await wait_for_sensors(db, 2 * len(dids), args.ha_start_timeout):
            out["error"] = "HA's recorder never knew all sensors"
            return out
        out["startup_s"] = time.perf_counter() - t_start
        out["entities"] = sensor_entities(db)
        await asyncio.sleep(3.0)  # let the warm-up states be committed
        base = count_states(db)
        target = base + 2 * args.messages
        files = load.prepare(args.messages)
        t0 = time.perf_counter()
        run = asyncio.create_task(load.run(files))
        series: list[tuple[float, int]] = []
        last = base
        while time.perf_counter() - t0 < args.ha_timeout:
            await asyncio.sleep(0.25)
            last = count_states(db)
            series.append((time.perf_counter() - t0, last - base))
            if last >= target:
                break
        seconds = time.perf_counter() - t0
        send_s = await run
        out.update(ok=last >= target, rows=last - base, target=2 * args.messages, seconds=seconds, send_s=send_s,
                   series=series)
        return out
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()
        out["log_tail"] = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])


async def bench(args: argparse.Namespace) -> int:
    print(f"Home Assistant vs ecohub on the NATS hub: {args.messages} messages (2 properties each) from "
          f"{args.devices} devices (one mosquitto_pub each), QoS 1, {args.repeats} repeats, "
          f"HA subscribes at QoS {args.ha_qos}")
    print("machine:\n  " + machine())
    if not os.path.exists(args.ha_python):  # noqa: ASYNC240 (once, before anything runs)
        print(f"Home Assistant is not installed: {args.ha_python} does not exist (python3 -m venv /tmp/havenv && "
              "/tmp/havenv/bin/pip install homeassistant home-assistant-frontend==20240307.0 paho-mqtt==1.6.1)")
        return 2
    version = ha_version(args.ha_python)
    print(f"Home Assistant {version} ({args.ha_python})", flush=True)
    eco_rates, ha_rates, ratios = [], [], []
    with tempfile.TemporaryDirectory(prefix="ecohub-ha-") as tmp_s:
        tmp = Path(tmp_s)
        env = make_env(tmp / "ecohub", args.devices)
        try:
            async with plane(env.services) as p:
                host, port = p.mqtt_endpoint
                load = MosqLoad(host, port, env.creds, env.workdir, inflight=args.inflight)
                dids = [did for did, _ in env.creds]
                for k in range(args.repeats):
                    rate, _pub = await ecohub(env, p, load, args.messages, 1, args.timeout)
                    print(f"  [#{k + 1}, load {loadavg()}] ecohub 1 worker persisted {rate:.0f} msg/s = "
                          f"{2 * rate:.0f} samples/s", flush=True)
                    ha = await run_ha((host, port, env.services.service_password), load, dids, args, tmp)
                    if "seconds" not in ha:
                        print(f"Home Assistant did not get ready ({ha.get('error')}); its log:\n{ha.get('log_tail')}")
                        return 1
                    ha_states_s = ha["rows"] / ha["seconds"]
                    marks = [f"{t:.0f}s:{n}" for t, n in ha["series"][::max(1, len(ha["series"]) // 10)]]
                    print(f"  [#{k + 1}, load {loadavg()}] HA (started in {ha['startup_s']:.1f} s, "
                          f"{ha['entities']} sensors): {ha['rows']}/{ha['target']} states in {ha['seconds']:.1f} s "
                          f"= {ha_states_s:.0f} states/s (all PUBACKs after {ha['send_s']:.2f} s)"
                          f"{'' if ha['ok'] else '  TIME LIMIT'}; over time: {' '.join(marks)}", flush=True)
                    eco_rates.append(2 * rate)
                    ha_rates.append(ha_states_s)
                    ratios.append(2 * rate / ha_states_s)
                    print(f"  [#{k + 1}] ecohub ÷ HA = {ratios[-1]:.1f}x", flush=True)
        finally:
            env.services.close()
    print("\n| figure (property samples/s) | min / median / max |\n|---|---|")
    print(f"| ecohub ingest, 1 worker, SQLite | {mmm(eco_rates)} |")
    print(f"| Home Assistant {version} MQTT sensors → recorder (SQLite) | {mmm(ha_rates)} |")
    print(f"| ecohub ÷ HA | {mmm(ratios, '{:.1f}')} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000, help="messages per run (default 10000)")
    parser.add_argument("--devices", type=int, default=20, help="devices publishing (default 20)")
    parser.add_argument("--inflight", type=int, default=100, help="unacknowledged QoS 1 publishes per device")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ha-qos", type=int, choices=[0, 1], default=1,
                        help="QoS of HA's sensor subscriptions (default 1, as a user would set for no loss)")
    parser.add_argument("--ha-python", default="/tmp/havenv/bin/python", help="python of HA's own venv")
    parser.add_argument("--ha-start-timeout", type=float, default=180.0, help="seconds for HA to start")
    parser.add_argument("--ha-timeout", type=float, default=180.0, help="seconds HA may take to record the load")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for the ecohub run")
    args = parser.parse_args(argv)
    HA_QOS[0] = args.ha_qos
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
