"""The device under test as a real OS process: start it from a command template, kill it, start it again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from ecohub.errors import ErrorCode, InvalidInput

OUTPUT_KEEP = 4000


def default_device_cmd(model: str, *, data_dir: Path, rate_hz: float = 1.0, fault: str | None = None) -> str:
    """`ecohub simulate` for the model, reading the credentials file (the default device under test)."""
    exe = shutil.which("ecohub", path=os.path.dirname(sys.executable)) or shutil.which("ecohub")
    launcher = [exe] if exe else [sys.executable, "-c", "from ecohub.cli.app import main; main()"]
    parts = [*launcher, "simulate", "--model", model, "--credentials", "{credentials}",
             "--host", "{host}", "--port", "{port}", "--rate", str(rate_hz), "--data-dir", str(data_dir),
             "--firmware-version", "1.0.0"]
    if fault:
        parts += ["--fault", fault]
    return _join(parts)


def _join(parts: list[str]) -> str:
    """A shell command line; placeholders stay bare (render_command quotes their values)."""
    return " ".join(p if re.fullmatch(r"\{[a-z]+\}", p) else shlex.quote(p) for p in parts)


def sdk_device_cmd(*, rate_hz: float = 1.0, fault: str | None = None) -> str:
    """The SDK simulator as a light process (no hub imports): the same devices as `ecohub simulate`, faster to
    start (tests start many)."""
    parts = [sys.executable, "-m", "ecohub.sdk.simulator", "--spec", "{spec}", "--credentials", "{credentials}",
             "--host", "{host}", "--port", "{port}", "--rate", str(rate_hz), "--firmware-version", "1.0.0",
             "--ota-test-keys"]
    if fault:
        parts += ["--fault", fault]
    return _join(parts)


def render_command(template: str, values: dict[str, str]) -> str:
    """Fill {credentials} {spec} {host} {port} {did} {secret} {model} placeholders; unknown ones are refused."""
    try:
        return template.format(**{k: shlex.quote(v) for k, v in values.items()})
    except (KeyError, IndexError, ValueError) as err:
        raise InvalidInput(f"--device-cmd has an unknown placeholder {err}; known: "
                           + ", ".join("{" + k + "}" for k in values), code=ErrorCode.INVALID_DEVICE_CMD) from err


class DeviceProcess:
    """A shell command running the firmware (or simulator); env ECOHUB_DID/SECRET/HOST/PORT/CREDENTIALS/MODEL."""

    def __init__(self, template: str, *, creds: list[dict[str, str]], model: str, host: str, port: int,
                 workdir: Path, spec: dict[str, Any] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.spec_path = workdir / "spec.json"
        self.spec_path.write_text(json.dumps(spec or {}))
        self.creds_path = workdir / "credentials.json"
        fd = os.open(self.creds_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)
        first = creds[0]
        self.values = {"credentials": str(self.creds_path), "spec": str(self.spec_path), "host": host,
                       "port": str(port), "did": first["did"],
                       "secret": first["secret"], "model": model}
        self.command = render_command(template, self.values)
        self.env = {**os.environ, "ECOHUB_DID": first["did"], "ECOHUB_SECRET": first["secret"], "ECOHUB_HOST": host,
                    "ECOHUB_PORT": str(port), "ECOHUB_CREDENTIALS": str(self.creds_path), "ECOHUB_MODEL": model,
                    "ECOHUB_SPEC": str(self.spec_path)}
        self.proc: asyncio.subprocess.Process | None = None
        self.output = bytearray()
        self.starts = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the command in its own process group."""
        self.proc = await asyncio.create_subprocess_shell(
            self.command, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        self._reader = asyncio.create_task(self._read(self.proc), name=f"device-output-{self.starts}")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            self.output += chunk
            if len(self.output) > OUTPUT_KEEP * 2:
                del self.output[: len(self.output) - OUTPUT_KEEP]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def tail(self, chars: int = 1200) -> str:
        """The end of what the process printed (for the report when it misbehaves)."""
        return self.output[-chars:].decode("utf-8", "replace")

    async def kill(self) -> int | None:
        """SIGKILL the whole process group: no clean MQTT disconnect, as when power is cut."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        code = await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, timeout=2)
        return code

    async def __aenter__(self) -> DeviceProcess:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.kill()

    def describe(self) -> dict[str, Any]:
        """The command as the report shows it (the secret is masked)."""
        return {"command": self.command.replace(self.values["secret"], "***"), "starts": self.starts}
