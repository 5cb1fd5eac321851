"""A cell's 3-node NATS cluster (each node configured by `ecohub broker config`, MQTT streams R3) with `ecohub api`
and `ecohub ingest --workers 2` attached: SIGKILL of one node under load loses nothing a device saw PUBACKed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from ecohub.bootstrap import Services
from ecohub.connect.nats.ingest import MQTT_MSGS
from ecohub.hub import free_port
from tests.connect.noloss import (
    NatsNode,
    acked_pairs,
    assert_exactly_once,
    ecohub,
    http_ok,
    service_nc,
    start_reporters,
    stored,
    wait_all_stored,
)
from tests.helpers import eventually


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_killing_a_node_of_the_cells_cluster_loses_nothing_pubacked(services: Services, plug_model: str,
                                                                           tmp_path: Path) -> None:
    data = services.settings.data_dir
    nodes = [NatsNode(f"ecohub-n{i}", data, tmp_path / "nats" / f"n{i}", cluster_port=free_port()) for i in range(3)]
    for n in nodes:
        n.start(n.configure(routes=[o.cluster_port for o in nodes if o is not n and o.cluster_port]))
    broker = ",".join(n.url for n in nodes)
    http = free_port()
    api = ecohub("api", ["api", "--broker", broker, "--http-port", str(http)], data, tmp_path)
    ingest = ecohub("ingest", ["ingest", "--workers", "2", "--broker", broker], data, tmp_path)
    procs = [api, ingest]
    nc = None
    try:
        await asyncio.gather(*(n.wait_healthy(60) for n in nodes))
        api.start()
        await eventually(lambda: http_ok(f"http://127.0.0.1:{http}/api/v1/health", procs), timeout=90, interval=0.3)
        ingest.start()
        nc = await service_nc(data, [n.url for n in nodes])
        info = await nc.jetstream().stream_info(MQTT_MSGS)
        assert info.config.num_replicas == 3  # `mqtt { stream_replicas: 3 }` from the generated config
        ports = [n.mqtt_port for n in nodes]
        canary, *devices = services.devices.provision(model=plug_model, count=7)
        (warm,) = start_reporters([canary], ports, count=1)
        await asyncio.to_thread(warm.join, 30)
        await eventually(lambda: set(stored(services)) >= acked_pairs([warm]), timeout=60, interval=0.2)
        per_device = 600
        # one in flight, as in docs/nats-findings.md §5: no PUBACK within 5 s → the next node, resend
        reporters = start_reporters(devices, ports, count=per_device, window=1, puback_timeout=5, deadline_s=200)
        await eventually(lambda: len(acked_pairs(reporters)) >= len(devices) * per_device // 3, timeout=60,
                         interval=0.02)
        # the worst node to lose: the one leading $MQTT_msgs, where every PUBACKed publish waits for ingest
        leader = (await nc.jetstream().stream_info(MQTT_MSGS)).cluster.leader  # type: ignore[union-attr]
        victim = next(n for n in nodes if n.name == leader)
        assert victim.proc is not None
        victim.proc.popen.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        for r in reporters:
            await asyncio.to_thread(r.join, 210)
        acked = acked_pairs(reporters)
        assert len(acked) == len(devices) * per_device, [r.failovers[:3] for r in reporters]
        rows = await wait_all_stored(services, acked, timeout=120)
        assert_exactly_once(rows, acked)
        print(f"node kill ({leader}, $MQTT_msgs leader): {len(acked)} PUBACKed, all stored once; "
              f"{sum(len(r.failovers) for r in reporters)} device failovers")
    except BaseException:
        print("\n".join(p.tail() for p in procs))
        raise
    finally:
        if nc is not None:
            await nc.close()
        for p in (ingest, api):
            p.stop()
        for n in nodes:
            if n.proc is not None:
                n.proc.stop()
