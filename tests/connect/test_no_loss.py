"""Nothing a device saw PUBACKed is lost, nor stored twice: a burst then a clean disconnect, a worker process
killed with SIGKILL, the whole hub killed with SIGKILL (its nats-server child dies with it)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from ecohub.bootstrap import Services
from ecohub.hub import free_port
from tests.connect.noloss import (
    KEY,
    NatsNode,
    Proc,
    Reporter,
    acked_pairs,
    assert_exactly_once,
    children,
    durable_state,
    ecohub,
    http_ok,
    pid_alive,
    service_nc,
    start_reporters,
    stored,
    value_of,
    wait_all_stored,
    worker_processes,
)
from tests.helpers import eventually


async def test_burst_then_clean_disconnect_stores_every_acknowledged_report(hub: Services, plug_model: str) -> None:
    """1,500 QoS 1 reports, 1,500 PUBACKs, DISCONNECT: all 1,500 values are in telemetry (amqtt stored 815)."""
    device = hub.devices.provision(model=plug_model)[0]
    assert hub.runtime.mqtt_port
    # 100 in flight, as fast as paho goes; the reporter disconnects cleanly after the last PUBACK
    (reporter,) = start_reporters([device], [hub.runtime.mqtt_port], count=1500, window=100, deadline_s=60)
    await asyncio.to_thread(reporter.join, 70)
    assert len(reporter.acked) == 1500 and not reporter.failovers
    rows = await wait_all_stored(hub, acked_pairs([reporter]), timeout=30)
    assert_exactly_once(rows, acked_pairs([reporter]))
    cell = hub.devices.cell_of(device.did)
    series = hub.telemetry.series(cell, device.did, f"{KEY[0]}.{KEY[1]}", limit=5000)
    assert sorted(s["value"] for s in series) == sorted(value_of(i) for i in range(1, 1501))


async def _until_acked(reporters: list[Reporter], n: int, timeout: float = 60) -> None:  # noqa: ASYNC109
    await eventually(lambda: len(acked_pairs(reporters)) >= n, timeout=timeout, interval=0.02)


async def _join(reporters: list[Reporter], timeout: float = 160) -> set[tuple[str, int]]:  # noqa: ASYNC109
    for r in reporters:
        await asyncio.to_thread(r.join, timeout)
    return acked_pairs(reporters)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_9_of_an_ingest_worker_process_loses_and_duplicates_nothing(services: Services, plug_model: str,
                                                                               tmp_path: Path) -> None:
    """Production shape: nats-server configured by `ecohub broker config`, `ecohub api` answering its callout,
    `ecohub ingest --workers 2`; one worker process is SIGKILLed mid-load and the pool starts another."""
    data = services.settings.data_dir
    node = NatsNode("ecohub-n0", data, tmp_path / "nats" / "n0")
    node.start(node.configure())
    http = free_port()
    api = ecohub("api", ["api", "--broker", node.url, "--http-port", str(http)], data, tmp_path)
    ingest = ecohub("ingest", ["ingest", "--workers", "2", "--broker", node.url], data, tmp_path)
    procs = [api, ingest]
    reporters: list[Reporter] = []
    try:
        await node.wait_healthy()
        api.start()
        await eventually(lambda: http_ok(f"http://127.0.0.1:{http}/api/v1/health", procs), timeout=90, interval=0.3)
        ingest.start()
        workers = await eventually(lambda: len(worker_processes(ingest.pid)) == 2 and worker_processes(ingest.pid),
                                   timeout=60, interval=0.2)
        canary, *devices = services.devices.provision(model=plug_model, count=9)
        warm = await _join(start_reporters([canary], [node.mqtt_port], count=1))
        await eventually(lambda: set(stored(services)) >= warm, timeout=60, interval=0.2)  # the workers consume
        per_device = 800
        reporters = start_reporters(devices, [node.mqtt_port], count=per_device, window=20, pause_s=0.002)
        await _until_acked(reporters, len(devices) * per_device // 3)
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)  # dies holding a fetched batch it had not acknowledged
        restarted = await eventually(lambda: len(worker_processes(ingest.pid)) == 2
                                     and victim not in worker_processes(ingest.pid), timeout=20, interval=0.2)
        assert restarted, "the pool did not start a new worker"
        acked = await _join(reporters)
        assert len(acked) == len(devices) * per_device, [r.failovers[:3] for r in reporters]
        # what the dead worker held comes back after the durable's ack_wait (30 s) to the live workers
        rows = await wait_all_stored(services, acked, timeout=120,
                                     on_wait=lambda: _all_alive(procs))
        assert_exactly_once(rows, acked)
        nc = await service_nc(data, [node.url])
        try:
            print("worker kill:", len(acked), "PUBACKed, all stored once; durable", await durable_state(nc))
        finally:
            await nc.close()
    except BaseException:
        print("\n".join(p.tail() for p in procs))
        raise
    finally:
        for p in (ingest, api):
            p.stop()
        if node.proc is not None:
            node.proc.stop()


def _all_alive(procs: list[Proc]) -> None:
    dead = [p for p in procs if not p.alive()]
    assert not dead, "\n".join(p.tail() for p in dead)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_9_of_the_hub_kills_its_nats_server_and_a_restart_stores_everything(
        services: Services, plug_model: str, tmp_path: Path) -> None:
    """`ecohub up` (embedded NATS) SIGKILLed mid-load: no orphan nats-server; a new `ecohub up` on the same data
    dir and ports resumes, devices reconnect, and every PUBACKed report is stored exactly once."""
    data = services.settings.data_dir
    http, mqtt = free_port(), free_port()
    args = ["up", "--http-port", str(http), "--mqtt-port", str(mqtt)]
    first, second = ecohub("up-1", args, data, tmp_path), ecohub("up-2", args, data, tmp_path)
    reporters: list[Reporter] = []
    health = f"http://127.0.0.1:{http}/api/v1/health"
    try:
        first.start()
        await eventually(lambda: http_ok(health, [first]), timeout=90, interval=0.3)
        nats_pid = int((data / "nats" / "nats-server.pid").read_text())
        assert pid_alive(nats_pid) and nats_pid in children(first.pid)
        devices = services.devices.provision(model=plug_model, count=6)
        per_device = 500
        reporters = start_reporters(devices, [mqtt], count=per_device, window=20, puback_timeout=3,
                                    pause_s=0.002, deadline_s=200)
        await _until_acked(reporters, len(devices) * per_device // 3)
        first.kill9()
        # PDEATHSIG: the server goes with the hub that started it (it flushes and exits on SIGTERM)
        await eventually(lambda: not pid_alive(nats_pid), timeout=10, interval=0.1)
        second.start()
        await eventually(lambda: http_ok(health, [second]), timeout=90, interval=0.3)
        acked = await _join(reporters, timeout=200)
        assert len(acked) == len(devices) * per_device, [r.failovers[:3] for r in reporters]
        assert any(r.failovers for r in reporters)  # the devices did see the hub go away
        rows = await wait_all_stored(services, acked, timeout=120, on_wait=lambda: _all_alive([second]))
        assert_exactly_once(rows, acked)
    except BaseException:
        print("\n".join(p.tail() for p in (first, second)))
        raise
    finally:
        second.stop()
        first.stop()
