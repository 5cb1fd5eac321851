"""3-node cluster: devices publish QoS 1 (failing over between nodes), workers pull; SIGKILL the stream leader."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from ecohub.connect.nats.callout import CalloutResponder, run_responder
from ecohub.connect.nats.cluster import NatsCluster
from ecohub.connect.nats.ingest import MQTT_MSGS, ensure_consumer, ensure_mqtt_msgs_consumer
from tests.connect.nats.conftest import make_auth
from tests.connect.nats.jsutil import STREAM, StreamSpec, Worker, ensure_stream, read_ids
from tests.connect.nats.mqttdev import Device

pytestmark = pytest.mark.slow  # minutes of load and node kills: run with -m slow

DEVICES, PER_DEVICE = 6, 700


def publisher(
    did: str,
    secret: str,
    ports: list[int],
    first: int,
    acked: set[tuple[str, int]],
    lock: threading.Lock,
    events: list[str],
) -> None:
    """Publish ids 0..PER_DEVICE-1 one at a time at QoS 1; on failure reconnect to the next node and resend."""
    node, i, d = first, 0, None
    deadline = time.monotonic() + 90
    while i < PER_DEVICE and time.monotonic() < deadline:
        if d is None:
            d = Device(did, secret, "127.0.0.1", ports[node])
            try:
                if not d.connect(3.0):
                    raise ConnectionError(f"connack {d.connack}")
            except OSError as exc:
                events.append(f"{did} connect n{node} failed: {exc}")
                d.client.loop_stop()
                d, node = None, (node + 1) % len(ports)
                time.sleep(0.2)
                continue
        payload = json.dumps({"did": did, "id": i})
        if d.publish(f"ecohub/{did}/up", payload, 1, False, 5.0):
            with lock:
                acked.add((did, i))
            i += 1
        else:
            events.append(f"{did} no PUBACK for id {i} on n{node}; failing over")
            d.client.loop_stop()
            d.client.disconnect()
            d, node = None, (node + 1) % len(ports)
    if d is not None:
        d.close()


@pytest.mark.parametrize("victim", ["ECOHUB_UP", MQTT_MSGS])
async def test_cluster_node_kill_loses_no_pubacked_message(tmp_path: Path, victim: str) -> None:
    seed, auth = make_auth()
    devices = {f"d_{secrets.token_hex(5)}": secrets.token_urlsafe(12) for _ in range(DEVICES)}
    responder = CalloutResponder(seed, lambda did, s: devices.get(did) == s)
    async with NatsCluster(tmp_path, auth=auth, restart=False) as cluster:
        auth_nc = await run_responder(cluster.urls, auth.service_user, auth.service_password, responder)
        svc = await nats.connect(
            servers=cluster.urls,
            user=auth.service_user,
            password=auth.service_password,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
        )
        try:
            await ensure_stream(svc, StreamSpec(replicas=3))
            await ensure_consumer(svc, stream=STREAM, durable="ingest", ack_wait_s=5)
            warm = Device(*next(iter(devices.items())), "127.0.0.1", cluster.nodes[0].mqtt_port)
            assert await asyncio.to_thread(warm.connect)  # creates the $MQTT_* streams (R3)
            await asyncio.to_thread(warm.close)
            await ensure_mqtt_msgs_consumer(svc, ack_wait_s=5)
            js = svc.jetstream()
            up_leader = (await js.stream_info("ECOHUB_UP")).cluster.leader  # type: ignore[union-attr]
            mq_leader = (await js.stream_info(MQTT_MSGS)).cluster.leader  # type: ignore[union-attr]

            got: dict[str, list[tuple[str, int]]] = {"ECOHUB_UP": [], MQTT_MSGS: []}

            def recorder(key: str):
                async def handle(m: Msg) -> None:
                    b = json.loads(m.data)
                    got[key].append((b["did"], b["id"]))

                return handle

            workers = [Worker(svc, recorder("ECOHUB_UP"), batch=200).start() for _ in range(2)]
            workers += [
                Worker(svc, recorder(MQTT_MSGS), stream=MQTT_MSGS, durable="ingest-mqtt", batch=200).start()
                for _ in range(2)
            ]

            acked: set[tuple[str, int]] = set()
            lock, events = threading.Lock(), list[str]()
            ports = [n.mqtt_port for n in cluster.nodes]
            threads = [
                threading.Thread(target=publisher, args=(did, s, ports, k % 3, acked, lock, events))
                for k, (did, s) in enumerate(devices.items())
            ]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            while len(acked) < DEVICES * PER_DEVICE // 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            cluster.node(str(up_leader if victim == "ECOHUB_UP" else mq_leader)).kill(signal.SIGKILL)
            killed_at = len(acked)
            for t in threads:
                await asyncio.to_thread(t.join, 120)
            elapsed = time.monotonic() - t0
            last, stable_since = (-1, -1), time.monotonic()
            while time.monotonic() - stable_since < 8 and time.monotonic() - t0 < 150:
                now = (len(got["ECOHUB_UP"]), len(got[MQTT_MSGS]))
                if now != last:
                    last, stable_since = now, time.monotonic()
                await asyncio.sleep(0.2)
            for w in workers:
                await w.stop()
            report = {
                "killed": f"leader of {victim}; leaders were ECOHUB_UP={up_leader} $MQTT_msgs={mq_leader}",
                "acked_at_kill": killed_at,
                "pubacked": len(acked),
                "publish_rate_msg_s": round(len(acked) / elapsed),
                "failover_events": len(events),
            }
            for key, seen in got.items():
                c = Counter(seen)
                report[key] = {
                    "consumed_unique": len(c),
                    "lost_pubacked": len(acked - set(c)),
                    "duplicates": sum(v - 1 for v in c.values()),
                }
            stored = set(await read_ids(svc, "ECOHUB_UP"))
            report["ECOHUB_UP"]["stored_unique"] = len(stored)  # type: ignore[index]
            report["ECOHUB_UP"]["lost_pubacked_in_store"] = len(acked - stored)  # type: ignore[index]
            si = await js.stream_info("ECOHUB_UP")
            report["ECOHUB_UP"]["leader_after"] = si.cluster.leader  # type: ignore[index,union-attr]
            print("CLUSTER", json.dumps(report, indent=1))
            print("events:", events[:8])
            assert len(acked) == DEVICES * PER_DEVICE
            assert report[MQTT_MSGS]["lost_pubacked"] == 0  # type: ignore[index]
        finally:
            await svc.close()
            await responder.stop()
            await auth_nc.close()
