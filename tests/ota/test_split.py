"""Campaigns in the production shape: a nats-server configured by `ecohub broker config`, two `ecohub api` processes
and `ecohub ingest --workers 2`, real SDK devices over MQTT. One engine leads (the lease); when it is killed the
other API process takes over, and a device that comes online then still gets its offer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.hub import free_port
from ecohub.ota.lease import Lease, lease_name
from tests.connect.noloss import ECOHUB, NatsNode, Proc, cli_env, http_ok, worker_processes
from tests.helpers import eventually
from tests.ota.conftest import Vendor

FAST = {"ECOHUB_OTA__TICK_S": "0.3", "ECOHUB_OTA__OFFER_RETRY_S": "3", "ECOHUB_OTA__LEASE_S": "2"}


def _proc(name: str, args: list[str], data: Path, logs: Path) -> Proc:
    return Proc(name, [*ECOHUB, *args], logs / f"{name}.log", cli_env(data, **FAST))


def _offers(dev: object) -> int:
    return len([m for m in dev.received if m.method == "ota_update"])  # type: ignore[attr-defined]


async def _campaign(client: httpx.AsyncClient, cid: int, status: str) -> dict | None:
    r = await client.get(f"/api/v1/ota/campaigns/{cid}")
    assert r.status_code == 200, r.text
    body = r.json()
    return body if body["status"] == status else None


@pytest.mark.timeout(300)
async def test_split_deployment_runs_one_engine_that_completes_a_campaign_and_fails_over(
        services: Services, vendor_for: Callable[[], Vendor], operator_token: str, tmp_path: Path) -> None:
    data = services.settings.data_dir
    node = NatsNode("ecohub-ota-n0", data, tmp_path / "nats" / "n0")
    node.start(node.configure())
    ports = [free_port(), free_port()]
    apis = [_proc(f"api-{i}", ["api", "--broker", node.url, "--http-port", str(p)], data, tmp_path)
            for i, p in enumerate(ports)]
    ingest = _proc("ingest", ["ingest", "--workers", "2", "--broker", node.url], data, tmp_path)
    procs = [*apis, ingest]
    vendor = vendor_for()
    services.runtime.mqtt_port = node.mqtt_port  # the devices connect to the cell's node
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=15,
                                 headers={"Authorization": f"Bearer {operator_token}"}) for p in ports]
    try:
        await node.wait_healthy()
        for a, p in zip(apis, ports, strict=True):
            a.start()
            await eventually(lambda p=p: http_ok(f"http://127.0.0.1:{p}/api/v1/health", procs), timeout=90,
                             interval=0.3)
        ingest.start()
        await eventually(lambda: len(worker_processes(ingest.pid)) == 2, timeout=60, interval=0.2)
        lease = Lease(services.dbs, lease_name(list(services.dbs.cells)), ttl_s=2)
        holder = await eventually(lease.holder_now, timeout=30, interval=0.2)
        leader = next(i for i, a in enumerate(apis) if f":{a.pid}:" in holder)

        devs = await vendor.fleet(4)
        late = vendor.device(vendor.provision(1)[0])  # a target that is offline while the campaign starts
        await eventually(lambda: all(services.twin.online("eu", [d.did]) for d in devs), timeout=60)
        vendor.image("2.0.0")
        # created through the API process that does not lead: the leader learns of it through the stream
        r = await clients[1 - leader].post("/api/v1/ota/campaigns", json={
            "model": vendor.model, "version": "2.0.0", "stages": [50, 100]})
        assert r.status_code == 201, r.text
        cid = r.json()["campaign_id"]
        await eventually(lambda: all(d.firmware_version == "2.0.0" for d in devs), timeout=90)
        body = await eventually(lambda: _progress(clients[1 - leader], cid, done=4), timeout=60)
        assert body["status"] == "running" and body["counts"] == {"done": 4, "pending": 1}
        assert all(_offers(d) == 1 for d in devs), [_offers(d) for d in devs]  # one engine: one offer each

        # the leader dies; the other API process takes the lease once it expired and serves the late device
        apis[leader].kill9()
        await eventually(lambda: (h := lease.holder_now()) is not None and f":{apis[1 - leader].pid}:" in h,
                         timeout=30, interval=0.2)
        await late.connect()
        done = await eventually(lambda: _campaign(clients[1 - leader], cid, "completed"), timeout=90)
        assert done["counts"] == {"done": 5}
        assert late.firmware_version == "2.0.0" and _offers(late) == 1
        twin = (await clients[1 - leader].get(f"/api/v1/devices/{late.did}/twin")).json()
        assert twin["firmware_version"] == "2.0.0"

        # a failure rate over the threshold halts the campaign in this shape too; nothing more is offered
        bad = await vendor.fleet(2, fault="ota-install-fails", version="2.0.0")
        await eventually(lambda: all(services.twin.online("eu", [d.did]) for d in bad), timeout=60)
        vendor.image("3.0.0")
        r = await clients[1 - leader].post("/api/v1/ota/campaigns", json={
            "model": vendor.model, "version": "3.0.0", "stages": [100], "threshold": 10})
        assert r.status_code == 201, r.text
        halted = await eventually(lambda: _campaign(clients[1 - leader], r.json()["campaign_id"], "halted"),
                                  timeout=90)
        assert "over the threshold 10%" in halted["reason"]
        assert all(d.firmware_version == "2.0.0" for d in bad)
    except BaseException:
        print("\n".join(p.tail() for p in procs))
        raise
    finally:
        for c in clients:
            await c.aclose()
        for d in vendor.devices:
            await d.disconnect()
        for p in (ingest, *apis):
            p.stop()
        if node.proc is not None:
            node.proc.stop()


async def _progress(client: httpx.AsyncClient, cid: int, *, done: int) -> dict | None:
    r = await client.get(f"/api/v1/ota/campaigns/{cid}")
    body = r.json()
    return body if body["counts"].get("done", 0) >= done else None
