"""The production shape on one machine: Mosquitto with dynamic security, PostgreSQL per cell, `ecohub api`
and `ecohub ingest --workers 2` as separate processes — driven the way an operator and a device would."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from ecohub.bootstrap import service_password
from ecohub.connect.mosquitto import MosquittoBroker
from ecohub.hub import free_port
from ecohub.sdk.device import Device
from tests.conftest import load_spec, postgres_reachable
from tests.helpers import eventually

pytestmark = [
    pytest.mark.mosquitto, pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                       reason="mosquitto is not installed"),
    pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432"),
]
ECOHUB = [sys.executable, "-m", "ecohub.cli"]
BASE = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def database() -> Iterator[str]:
    """A database name prefix; `--database` creates NAME and NAME_{cell}; all dropped afterwards."""
    name = f"ecohub_p_{secrets.token_hex(4)}"
    yield f"{BASE}/{name}"
    admin = create_engine(f"{BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for (db,) in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{name}%"}):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


def _spawn(args: list[str], data_dir: Path) -> subprocess.Popen[str]:
    """Start a CLI process; its output goes to a log file (a pipe nobody drains would block it)."""
    env = {**os.environ, "ECOHUB_DATA_DIR": str(data_dir)}
    log = open(data_dir.parent / f"{args[0]}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([*ECOHUB, *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(tmp_path.glob("*.log")))


@pytest.mark.timeout(240)
async def test_api_and_ingest_workers_as_separate_processes(tmp_path: Path, database: str) -> None:
    data = tmp_path / "data"
    password = service_password(data)
    mqtt_port, http_port = free_port(), free_port()
    procs: list[subprocess.Popen[str]] = []
    async with MosquittoBroker(host="127.0.0.1", port=mqtt_port, service_password=password,
                               work_dir=tmp_path / "mosquitto"):
        try:
            broker = f"mosquitto://127.0.0.1:{mqtt_port}"
            env = {**os.environ, "ECOHUB_DATA_DIR": str(data), "ECOHUB_DATABASE__URL": database,
                   "ECOHUB_DATABASE__CELL_URL_TEMPLATE": f"{database}_{{cell}}"}
            procs.append(_spawn(["api", "--broker", broker, "--http-port", str(http_port), "--database", database],
                                data))
            procs.append(_spawn(["ingest", "--workers", "2", "--broker", broker, "--database", database], data))
            url = f"http://127.0.0.1:{http_port}"

            async def api_up() -> bool:
                try:
                    async with httpx.AsyncClient() as c:
                        return (await c.get(f"{url}/api/v1/health")).status_code == 200
                except httpx.HTTPError:
                    assert all(p.poll() is None for p in procs), _logs(tmp_path)
                    return False

            await eventually(api_up, timeout=120, interval=0.3)
            create = [*ECOHUB, "token", "create", "--role", "operator", "--json"]
            token = await asyncio.to_thread(subprocess.run, create, env=env, capture_output=True, text=True,
                                            timeout=120, check=True)
            headers = {"Authorization": f"Bearer {json.loads(token.stdout)['token']}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as api:
                spec = load_spec("cuco.plug.v3")
                r = await api.post("/api/v1/products", json={"model": "acme.plug.v1", "spec": spec})
                assert r.status_code == 201, r.text
                r = await api.post("/api/v1/devices", json={"model": "acme.plug.v1"})
                assert r.status_code == 201, r.text
                dev_info = r.json()
                assert dev_info["mqtt"]["port"] == mqtt_port
                dev = Device(did=dev_info["did"], secret=dev_info["secret"], spec=load_spec("cuco.plug.v3"),
                             port=mqtt_port, mqtt_version=5)
                await dev.connect()
                try:
                    for v in range(1, 21):
                        dev.report({(11, 1): v})

                    async def twin_done() -> bool:
                        t = (await api.get(f"/api/v1/devices/{dev.did}/twin")).json()
                        return t["properties"].get("11.1", {}).get("value") == 20 and t["online"] is True

                    try:
                        await eventually(twin_done, timeout=30, interval=0.2)
                    except AssertionError:
                        dead = (await api.get("/api/v1/dead-letters")).json()
                        got = (await api.get(f"/api/v1/devices/{dev.did}/telemetry", params={"key": "11.1"})).json()
                        twin = (await api.get(f"/api/v1/devices/{dev.did}/twin")).json()
                        raise AssertionError(f"twin {twin} stored {got}; dead {dead[:3]}; {_logs(tmp_path)}") from None
                    async def all_samples() -> list[int]:
                        series = (await api.get(f"/api/v1/devices/{dev.did}/telemetry", params={"key": "11.1"})).json()
                        values = [s["value"] for s in series["samples"]]
                        return values if len(values) >= 20 else []

                    # two workers commit independently: the twin can show the last value before the other
                    # worker's batch with earlier values has committed
                    try:
                        values = await eventually(all_samples, timeout=30, interval=0.2)
                    except AssertionError:
                        dead = (await api.get("/api/v1/dead-letters")).json()
                        got = (await api.get(f"/api/v1/devices/{dev.did}/telemetry", params={"key": "11.1"})).json()
                        raise AssertionError(f"stored {got}; dead letters {dead[:3]}; {_logs(tmp_path)}") from None
                    assert sorted(values) == list(range(1, 21))
                    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                                       json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}]})
                    assert r.status_code == 200 and r.json()["status"] == "replied", r.text
                finally:
                    await dev.disconnect()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
