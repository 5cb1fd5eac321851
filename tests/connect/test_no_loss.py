"""Production shape: Mosquitto + N ingest worker processes; kill -9 a worker and restart the broker mid-load.

Every message the broker acknowledged to a device is stored exactly once (dedup by the device's `id`).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from sqlalchemy import func, select

from ecohub.bootstrap import Services
from ecohub.connect.models import InboxEntry
from ecohub.hub import free_port
from ecohub.protocol import Topic
from ecohub.telemetry.models import Sample
from ecohub.workers import WorkerPool

pytestmark = [pytest.mark.mosquitto,
              pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")]


class Mosquitto:
    """A Mosquitto of our own on a free port, with persistence, restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\nmax_queued_messages 100000\n"
            f"log_dest file {workdir}/mosquitto.log\n"
            # started as root, mosquitto would switch to its own user and lose access to our temp dir
            + (f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)])
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop saves sessions and queued messages
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


class Publisher:
    """A device as a plain paho client: QoS 1; the broker's PUBACK marks a message acknowledged."""

    def __init__(self, did: str, secret: str, port: int) -> None:
        self.did = did
        self.sent: list[tuple[int, paho.MQTTMessageInfo]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=did, clean_session=False)
        self.client.username_pw_set(did, secret)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    @property
    def acked(self) -> set[int]:
        """Ids of the messages the broker acknowledged."""
        # paho queues a QoS 1 publish made while disconnected and sends it after reconnecting; its public
        # is_published() raises for those, so read the flag the PUBACK handler sets.
        return {msg_id for msg_id, info in self.sent if info._published}

    def send(self, msg_id: int, value: int) -> None:
        payload = (f'{{"id": {msg_id}, "method": "properties_changed", '
                   f'"params": [{{"siid": 11, "piid": 1, "value": {value}}}]}}').encode()
        self.sent.append((msg_id, self.client.publish(Topic.up(self.did), payload, qos=1)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _stored(services: Services) -> tuple[int, int]:
    with services.dbs.cell_session("eu") as s:
        inbox = s.scalar(select(func.count()).select_from(InboxEntry)) or 0
        samples = s.scalar(select(func.count()).select_from(Sample)) or 0
    return int(inbox), int(samples)


def _wait_until_consuming(services: Services, pub: Publisher) -> None:
    """Send a canary (id 0) until the workers have stored it: from then on they are subscribed."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pub.send(0, 0)
        time.sleep(0.3)
        if _stored(services)[0] > 0:
            return
    raise AssertionError("the ingest workers did not start consuming within 30 s")


def _run_load(services: Services, pool: WorkerPool, mosquitto: Mosquitto, *, kill: bool, restart: bool) -> None:
    devices = services.devices.provision(model="cuco.plug.v3", count=8)
    pubs = [Publisher(d.did, d.secret, mosquitto.port) for d in devices]
    try:
        _wait_until_consuming(services, pubs[0])
        per_device = 250
        for i in range(1, per_device + 1):
            for p in pubs:
                p.send(i, i % 1000)
            if kill and i == per_device // 3:
                os.kill(pool.procs[0].pid, signal.SIGKILL)  # a worker dies in the middle of the load
            if kill and i == per_device // 2:
                assert pool.supervise_once() == [0]  # and is restarted with the same persistent session
            if restart and i == 2 * per_device // 3:
                mosquitto.stop()
                time.sleep(0.3)
                mosquitto.start()  # the broker restarts; devices and workers reconnect
            time.sleep(0.002)
        deadline = time.monotonic() + 90
        expected = per_device * len(pubs) + 1
        while time.monotonic() < deadline and sum(len(p.acked) for p in pubs) < expected:
            time.sleep(0.2)
        acked = {(p.did, m) for p in pubs for m in p.acked}
        assert len(acked) == expected  # paho resends what the broker did not acknowledge
        stored: set[tuple[str, int]] = set()
        while time.monotonic() < deadline:
            pool.supervise_once()
            with services.dbs.cell_session("eu") as s:
                stored = set(s.execute(select(InboxEntry.did, InboxEntry.msg_id)).tuples())
            if acked <= stored:
                break
            time.sleep(0.3)
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged messages were not stored, e.g. {sorted(missing)[:5]}"
        inbox, samples = _stored(services)
        assert samples == inbox  # one sample per stored message: no duplicates
        with services.dbs.cell_session("eu") as s:
            dup = s.execute(select(Sample.did, Sample.msg_id, func.count()).group_by(Sample.did, Sample.msg_id)
                            .having(func.count() > 1)).all()
        assert dup == []
    finally:
        for p in pubs:
            p.close()


@pytest.mark.timeout(200)
def test_kill_9_a_shared_worker_mid_load_loses_nothing(services: Services, plug_model: str,
                                                       mosquitto: Mosquitto) -> None:
    """Two workers share the stream; one is killed with SIGKILL and restarted: nothing lost, nothing twice."""
    pool = WorkerPool(services.settings, broker_url=f"mqtt://127.0.0.1:{mosquitto.port}", workers=2)
    pool.start()
    try:
        _run_load(services, pool, mosquitto, kill=True, restart=False)
        assert pool.restarts >= 1
    finally:
        pool.stop()


@pytest.mark.timeout(200)
def test_kill_9_worker_and_restart_broker_mid_load_loses_nothing(services: Services, plug_model: str,
                                                                 mosquitto: Mosquitto) -> None:
    """The worker is killed and the broker restarted during the load: every acknowledged message stored once.

    One worker holds a plain persistent subscription, which Mosquitto restores from its persistence file;
    Mosquitto 2.0.11 does not restore shared subscriptions across its own restart (docs/deploy.md).
    """
    pool = WorkerPool(services.settings, broker_url=f"mqtt://127.0.0.1:{mosquitto.port}", workers=1)
    pool.start()
    try:
        _run_load(services, pool, mosquitto, kill=True, restart=True)
    finally:
        pool.stop()
