"""EmbeddedNats: config, readiness, restart on death, stop, no orphan after kill -9 of the parent, stale pid reaping."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats

from ecohub.connect.nats.server import EmbeddedNats, find_binary, http_status

ROOT = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


async def wait_gone(pid: int, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
    """Wait until pid is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_config_start_ready_stop(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path, max_payload=4096, server_name="t1") as s:
        conf = s.conf_file.read_text()
        for needle in (
            'server_name: "t1"',
            f"store_dir: {str(tmp_path)!r}".replace("'", '"'),
            f"port: {s.mqtt_port}",
            "max_payload: 4096",
        ):
            assert needle in conf, needle
        assert await http_status(s.host, s.monitor_port, "/healthz") == 200
        nc = await nats.connect(s.url)
        assert nc.max_payload == 4096
        await nc.close()
        pid = s.pid
        assert pid and s.pid_file.exists()
    assert await wait_gone(pid)
    assert not s.pid_file.exists()


async def test_supervisor_restarts_a_killed_server(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path) as s:
        first = s.pid
        assert first
        s.kill(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (s.pid == first or s.restarts == 0) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await s.wait_ready()
        assert s.restarts == 1 and s.pid != first
        nc = await nats.connect(s.url)  # same ports after restart
        await nc.close()


CHILD = """
import asyncio, sys
from ecohub.connect.nats.server import EmbeddedNats
async def main():
    async with EmbeddedNats(sys.argv[1]) as s:
        print(s.pid, flush=True)
        await asyncio.sleep(600)
asyncio.run(main())
"""


async def test_no_orphan_when_parent_is_sigkilled(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True)  # noqa: ASYNC220
    try:
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 30)  # type: ignore[union-attr]
        child = int(line)
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert await wait_gone(child), "nats-server outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


async def test_stale_server_from_pid_file_is_reaped(tmp_path: Path) -> None:
    s = EmbeddedNats(tmp_path)
    s.write_config()
    # not tied to us (own session, no PDEATHSIG): an "orphan" from an earlier run
    stale = subprocess.Popen(  # noqa: ASYNC220
        [find_binary(), "-c", str(s.conf_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not s.pid_file.exists() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert int(s.pid_file.read_text()) == stale.pid
        await s.start()  # same ports: would fail to bind if the stale one were still there
        try:
            assert stale.wait(5) is not None
            assert s.pid != stale.pid and alive(s.pid or 0)
        finally:
            await s.stop()
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
