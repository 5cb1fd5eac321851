"""Figures (printed): connects/s through the callout, QoS 1 pass-through vs. into JetStream + pull consumer."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ecohub.connect.nats.ingest import MQTT_MSGS, StreamSpec, ensure_consumer, ensure_mqtt_msgs_consumer, ensure_stream
from tests.connect.nats.conftest import Hub
from tests.connect.nats.mqttdev import Burst, Device

N_CONNECT, N_MSGS = 500, 20_000


def connect_once(host: str, port: int, cid: str, user: str, pw: str) -> bool:
    """One full MQTT connect -> CONNACK -> disconnect with paho (no network thread)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, pw)
    ok: list[bool] = []
    c.on_connect = lambda *a: ok.append(not a[3].is_failure)
    c.connect(host, port, keepalive=30)
    deadline = time.monotonic() + 5
    while not ok and time.monotonic() < deadline:
        c.loop(0.01)
    c.disconnect()
    c.loop(0.01)
    return bool(ok and ok[0])


def rate(hub: Hub, creds: list[tuple[str, str, str]], workers: int) -> float:
    """Connects/s over creds with `workers` threads."""
    host, port = hub.server.host, hub.server.mqtt_port
    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(lambda c: connect_once(host, port, *c), creds))
    assert all(results)
    return len(creds) / (time.monotonic() - t0)


async def test_connect_rate(hub: Hub) -> None:
    devs = [hub.provision() for _ in range(N_CONNECT)]
    creds = [(d, d, s) for d, s in devs]
    svc = [(f"svc-{i}", hub.auth.service_user, hub.auth.service_password) for i in range(N_CONNECT)]
    fig = {
        "callout_sequential_per_s": await asyncio.to_thread(rate, hub, creds, 1),
        "callout_8way_per_s": await asyncio.to_thread(rate, hub, creds, 8),
        "static_user_sequential_per_s": await asyncio.to_thread(rate, hub, svc, 1),
        "static_user_8way_per_s": await asyncio.to_thread(rate, hub, svc, 8),
    }
    fig["callout_cost_ms_per_connect_sequential"] = (
        1000 / fig["callout_sequential_per_s"] - 1000 / fig["static_user_sequential_per_s"]
    )
    print("CONNECT", json.dumps({k: round(v, 2) for k, v in fig.items()}))
    assert hub.responder.stats.allowed >= 2 * N_CONNECT


async def test_throughput(hub: Hub) -> None:
    fig: dict[str, float] = {}
    # 1. pass-through: paho QoS 1 publisher -> NATS core subscriber (nats-py)
    got = 0
    done = asyncio.Event()

    async def cb(m: object) -> None:
        nonlocal got
        got += 1
        if got == N_MSGS:
            done.set()

    sub = await hub.svc.subscribe("ecohub.*.up", cb=cb)
    did, secret = hub.provision()
    d = hub.device(did, secret)
    assert await asyncio.to_thread(d.connect)
    b = Burst(d)
    t0 = time.monotonic()
    await asyncio.to_thread(b.send, range(N_MSGS), None, 60)
    await asyncio.wait_for(done.wait(), 120)
    fig["passthrough_paho_qos1_to_nats_sub_msg_s"] = N_MSGS / (time.monotonic() - t0)
    await asyncio.to_thread(b.wait, N_MSGS)
    await sub.unsubscribe()

    # 2. pass-through to an MQTT QoS 1 subscriber (the service user over MQTT)
    rx = Device("svc-sub", hub.auth.service_password, hub.server.host, hub.server.mqtt_port)
    rx.client.username_pw_set(hub.auth.service_user, hub.auth.service_password)
    assert await asyncio.to_thread(rx.connect)
    await asyncio.to_thread(rx.subscribe, "ecohub/+/up", 1)
    counted = threading.Event()
    n_rx = [0]

    def on_rx(*_: object) -> None:
        n_rx[0] += 1
        if n_rx[0] >= N_MSGS:
            counted.set()

    rx.client.on_message = on_rx
    b2 = Burst(d)
    t0 = time.monotonic()
    await asyncio.to_thread(b2.send, range(N_MSGS), None, 60)
    assert await asyncio.to_thread(counted.wait, 120)
    fig["passthrough_paho_qos1_to_mqtt_qos1_sub_msg_s"] = N_MSGS / (time.monotonic() - t0)
    await asyncio.to_thread(b2.wait, N_MSGS)
    await asyncio.to_thread(rx.close)

    # 3. mosquitto_pub -l (QoS 1, one connection) -> NATS core subscriber
    got, done = 0, asyncio.Event()
    sub = await hub.svc.subscribe("ecohub.*.up", cb=cb)
    lines = "".join(json.dumps({"did": did, "id": i, "pad": "x" * 60}) + "\n" for i in range(N_MSGS))
    t0 = time.monotonic()
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            "mosquitto_pub",
            "-h",
            hub.server.host,
            "-p",
            str(hub.server.mqtt_port),
            "-i",
            did,
            "-u",
            did,
            "-P",
            secret,
            "-q",
            "1",
            "-t",
            f"ecohub/{did}/up",
            "-l",
        ],
        input=lines,
        text=True,
        capture_output=True,
    )
    await asyncio.wait_for(done.wait(), 120)
    fig["mosquitto_pub_qos1_to_nats_sub_msg_s"] = N_MSGS / (time.monotonic() - t0)
    assert proc.returncode == 0, proc.stderr
    await sub.unsubscribe()

    # 4. into JetStream (ECOHUB_UP) consumed by a nats-py pull consumer fetching 1000 at a time, ack each
    for stream, durable, setup in (
        ("ECOHUB_UP", "bench", lambda: ensure_consumer(hub.svc, durable="bench", max_ack_pending=50_000)),
        (
            MQTT_MSGS,
            "bench-mqtt",
            lambda: ensure_mqtt_msgs_consumer(hub.svc, durable="bench-mqtt", max_ack_pending=50_000),
        ),
    ):
        await ensure_stream(hub.svc, StreamSpec())
        await hub.svc.jetstream().purge_stream("ECOHUB_UP")
        await setup()
        psub = await hub.svc.jetstream().pull_subscribe_bind(durable=durable, stream=stream)
        b3 = Burst(d)
        t0 = time.monotonic()
        pub = asyncio.create_task(asyncio.to_thread(b3.send, range(N_MSGS), None, 60))
        n = 0
        while n < N_MSGS:
            try:
                msgs = await psub.fetch(1000, timeout=2)
            except Exception:
                continue
            for m in msgs:
                await m.ack()
            n += len(msgs)
        fig[f"jetstream_{stream}_paho_qos1_to_pull_1000_msg_s"] = N_MSGS / (time.monotonic() - t0)
        await pub
        await asyncio.to_thread(b3.wait, N_MSGS)
        await psub.unsubscribe()
        await hub.svc.jetstream().delete_consumer(stream, durable)
    print("THROUGHPUT", json.dumps({k: round(v) for k, v in fig.items()}), f"n={N_MSGS} payload~100B")
    _ = secrets
