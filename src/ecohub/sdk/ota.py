"""The SDK's firmware update handler: download with resume (HTTP ranges), verify hash, size and both signatures,
install, report every step as ota_progress (what partner firmware does on an ota_update)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ecohub.protocol import Code, Method, Topic
from ecohub.protocol.messages import OtaState, OtaUpdateParams, encode, firmware_statement

log = logging.getLogger(__name__)
REQUIRED_SIGNERS = ("partner", "brand")
DOWNLOAD_TRIES = 5


class Updatable(Protocol):
    """What the updater needs of its device (the SDK's `Device`)."""

    did: str
    model: str | None
    firmware_version: str | None

    def next_id(self) -> int: ...
    def publish_raw(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...
    def reply(self, request_id: int, *, result: Any = None, error: tuple[int, str] | None = None) -> None: ...
    def announce_state(self) -> None: ...


class OtaFailure(Exception):
    """An update step failed with a protocol code."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


def version_tuple(text: str) -> tuple[int, ...]:
    """`1.2.3` → (1, 2, 3, 0); a version that is not dotted numbers compares as oldest."""
    try:
        parts = tuple(int(p) for p in text.split("."))
    except ValueError:
        return ()
    return parts + (0,) * (4 - len(parts))


def load_trust(keys: Mapping[str, str | bytes | Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by signer (`partner`, `brand`): base64 of the raw 32 bytes, raw bytes, or key objects."""
    out = {}
    for by, key in keys.items():
        if isinstance(key, Ed25519PublicKey):
            out[by] = key
        else:
            raw = base64.b64decode(key) if isinstance(key, str) else key
            out[by] = Ed25519PublicKey.from_public_bytes(raw)
    return out


class OtaHandler:
    """One device's updater. `trust` pins the partner's and the brand's public keys (built into the firmware)."""

    def __init__(self, device: Updatable, *, trust: Mapping[str, Ed25519PublicKey], chunk_size: int = 1024 * 1024,
                 on_install: Callable[[bytes, OtaUpdateParams], int] | None = None) -> None:
        self.device = device
        self.trust = dict(trust)
        self.chunk_size = chunk_size
        self.on_install = on_install
        self.busy = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.ranges: list[str] = []  # the Range headers it asked for (how a test sees the resume)

    def progress(self, version: str, state: OtaState, *, progress: int = 0, code: int = 0, message: str = "") -> None:
        """Publish one ota_progress notification."""
        params: dict[str, Any] = {"version": version, "state": state, "progress": progress}
        if code:
            params["code"], params["message"] = code, message[:200]
        body = {"id": self.device.next_id(), "method": Method.OTA_PROGRESS, "params": params}
        self.device.publish_raw(Topic.up(self.device.did), encode(body))

    def start(self, request_id: int, raw: Any) -> None:
        """Answer the ota_update request and run the update as a task (the reply says only: accepted)."""
        try:
            params = msgspec.convert(raw, OtaUpdateParams)
        except msgspec.ValidationError as err:
            self.device.reply(request_id, error=(Code.INVALID_PARAMS, str(err)))
            return
        if self.busy:
            self.device.reply(request_id, error=(Code.DEVICE_BUSY, "an update is already running"))
            return
        self.device.reply(request_id, result={"code": Code.OK})
        task = asyncio.create_task(self.run(params), name=f"ota-{self.device.did}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, params: OtaUpdateParams) -> None:
        """The whole update; any failure is reported with its code, the installed version stays."""
        self.busy = True
        try:
            current = self.device.firmware_version
            if not params.rollback and current is not None and version_tuple(params.version) <= version_tuple(current):
                raise OtaFailure(Code.OTA_VERSION_NOT_NEWER, f"{params.version} is not newer than {current}")
            self.verify_signatures(params)  # before fetching anything: an unsigned offer costs no download
            self.progress(params.version, OtaState.DOWNLOADING)
            data = await self.download(params)
            self.progress(params.version, OtaState.VERIFYING, progress=100)
            self.verify(params, data)
            self.progress(params.version, OtaState.INSTALLING, progress=100)
            await self.install(params, data)
            self.progress(params.version, OtaState.DONE, progress=100)
        except OtaFailure as err:
            self.progress(params.version, OtaState.FAILED, code=int(err.code), message=str(err))
        except Exception as err:  # a bug in a hook: report it rather than leave the cloud waiting
            log.exception("%s: update to %s failed", self.device.did, params.version)
            self.progress(params.version, OtaState.FAILED, code=int(Code.INTERNAL_ERROR), message=str(err))
        finally:
            self.busy = False

    async def download(self, params: OtaUpdateParams) -> bytes:
        """Fetch the image in ranges; a dropped connection resumes where it stopped (DOWNLOAD_TRIES times)."""
        data = bytearray()
        tries = 0
        async with httpx.AsyncClient(timeout=30) as client:
            while len(data) < params.size:
                end = min(len(data) + self.chunk_size, params.size) - 1
                header = f"bytes={len(data)}-{end}"
                self.ranges.append(header)
                try:
                    async with client.stream("GET", params.url, headers={"Range": header}) as r:
                        if r.status_code not in (200, 206):
                            raise OtaFailure(Code.OTA_DOWNLOAD_FAILED, f"download answered HTTP {r.status_code}")
                        if r.status_code == 200:
                            data.clear()  # the server ignored the range: this is the whole image
                        async for chunk in r.aiter_bytes():
                            data += chunk
                            if len(data) > params.size:
                                raise OtaFailure(Code.OTA_HASH_MISMATCH, "the image is longer than its size")
                except httpx.HTTPError as err:
                    tries += 1
                    if tries >= DOWNLOAD_TRIES:
                        raise OtaFailure(Code.OTA_DOWNLOAD_FAILED, f"download failed: {err}") from err
                    await asyncio.sleep(0.2 * tries)
        return self.received(bytes(data))

    def received(self, data: bytes) -> bytes:
        """The downloaded bytes as the device sees them (the simulator's transport faults change them here)."""
        return data

    def verify(self, params: OtaUpdateParams, data: bytes) -> None:
        """The downloaded bytes match the signed size and sha256 (the signatures bind those to model and version)."""
        if len(data) != params.size or hashlib.sha256(data).hexdigest() != params.sha256:
            raise OtaFailure(Code.OTA_HASH_MISMATCH, "the image does not match its sha256 and size")

    def verify_signatures(self, params: OtaUpdateParams) -> None:
        """The partner's and the brand's signatures over (model, version, sha256, size) verify with pinned keys."""
        model = self.device.model
        if model is None:
            raise OtaFailure(Code.OTA_BAD_SIGNATURE, "the device does not know its model to check the signatures")
        statement = firmware_statement(model, params.version, params.sha256, params.size)
        for by in REQUIRED_SIGNERS:
            key = self.trust.get(by)
            sigs = [s for s in params.signatures if s.by == by]
            if key is None or not sigs or not any(self._verifies(key, s.sig, statement) for s in sigs):
                raise OtaFailure(Code.OTA_BAD_SIGNATURE, f"the {by} signature does not verify")

    @staticmethod
    def _verifies(key: Ed25519PublicKey, sig: str, statement: bytes) -> bool:
        try:
            key.verify(base64.b64decode(sig, validate=True), statement)
        except (InvalidSignature, ValueError):
            return False
        return True

    async def install(self, params: OtaUpdateParams, data: bytes) -> None:
        """Apply the image, "reboot" into it: the new version is announced in the retained online state."""
        if self.on_install is not None:
            code = self.on_install(data, params)
            if code != Code.OK:
                raise OtaFailure(Code.OTA_INSTALL_FAILED, f"install failed with code {code}")
        self.device.firmware_version = params.version
        self.device.announce_state()
