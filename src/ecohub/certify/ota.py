"""OTA checks of the suite: the device names its firmware version, and refuses an image whose signatures do not
verify (reporting that result in ota_progress), staying on its version."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ecohub.certify.context import Context, Outcome
from ecohub.certify.domain import Status
from ecohub.certify.probe import Seen, retained_state
from ecohub.protocol import Channel, Code, Method
from ecohub.protocol.messages import firmware_statement

TEST_VERSION = "999.0.0"  # newer than anything a unit runs: only the signatures can make it refuse
IMAGE_BYTES = 4096


@asynccontextmanager
async def image_server(image: bytes, host: str = "127.0.0.1") -> AsyncIterator[tuple[str, list[str]]]:
    """A one-file HTTP server for the test image (an insecure updater downloads it); → (url, request lines)."""
    requests: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            requests.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         + f"Content-Length: {len(image)}\r\nConnection: close\r\n\r\n".encode() + image)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}/firmware.bin", requests
    finally:
        server.close()
        await server.wait_closed()


def _progress(ctx: Context, since: float) -> list[Seen]:
    return [s for s in ctx.probe.messages(ctx.did, channel=Channel.UP, since=since)
            if s.method == Method.OTA_PROGRESS and isinstance(s.body.get("params"), dict)]


async def firmware_version(ctx: Context) -> Outcome:
    """The retained online state names the firmware version the unit runs (the fleet view and OTA rely on it)."""
    seen = await retained_state(ctx.endpoint, ctx.did, client_id=f"certify-fw-{ctx.did}", within=ctx.timing.command_s)
    if seen is None or not isinstance(seen.body, dict):
        return Outcome(Status.FAIL, "no retained online state to read the firmware version from")
    version = seen.body.get("firmware_version")
    evidence = {"message": seen.evidence(ctx.t0)}
    if not isinstance(version, str) or not version:
        return Outcome(Status.FAIL, 'the online state does not name the firmware version ({"online": true, '
                       '"firmware_version": "1.2.3"})', evidence)
    ctx.notes["firmware_version"] = version
    return Outcome(Status.PASS, f"the unit says it runs firmware {version}", evidence)


async def refuses_bad_signature(ctx: Context) -> Outcome:
    """ota_update of an image signed by a key the unit does not trust: it must answer, report `failed` with code
    -4023 (bad signature) in ota_progress, never install, and stay on its version."""
    image = os.urandom(IMAGE_BYTES)
    sha = hashlib.sha256(image).hexdigest()
    rogue = Ed25519PrivateKey.generate()
    sig = base64.b64encode(rogue.sign(firmware_statement(ctx.model, TEST_VERSION, sha, len(image)))).decode()
    async with image_server(image) as (url, downloads):
        params: dict[str, Any] = {"version": TEST_VERSION, "url": url, "sha256": sha, "size": len(image),
                                  "signatures": [{"by": "partner", "key_id": "certify-rogue", "sig": sig},
                                                 {"by": "brand", "key_id": "certify-rogue", "sig": sig}]}
        start = time.monotonic()
        reply, took = await ctx.probe.request(ctx.did, Method.OTA_UPDATE, params, within=ctx.timing.command_s)
        final = await ctx.probe.wait_for(
            lambda s: s.did == ctx.did and s.method == Method.OTA_PROGRESS and isinstance(s.body.get("params"), dict)
            and s.body["params"].get("state") in ("failed", "done"),
            within=ctx.timing.command_s + ctx.timing.settle_s, since=start)
        ctx.mark_busy(start)
    reports = _progress(ctx, start)
    evidence: dict[str, Any] = {"reply": reply.body if reply else None, "reply_ms": round(took * 1000),
                                "progress": [s.body["params"] for s in reports[:8]], "downloads": downloads[:4]}
    if reply is None:
        return Outcome(Status.FAIL, f"no answer to ota_update within {ctx.timing.command_s:.0f}s", evidence)
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    if isinstance(error, dict) and error.get("code") == Code.METHOD_NOT_FOUND:
        return Outcome(Status.FAIL, "the unit does not implement ota_update: it has no update mechanism", evidence)
    states = [s.body["params"].get("state") for s in reports]
    if "installing" in states or "done" in states:
        return Outcome(Status.FAIL, "the unit installed an image whose signatures do not verify", evidence)
    if final is None:
        return Outcome(Status.FAIL, "the unit reported no result (ota_progress failed with a code) for the offer",
                       evidence)
    result = final.body["params"]
    if result.get("version") != TEST_VERSION:
        return Outcome(Status.FAIL, f"the result names version {result.get('version')!r}, not the offered "
                       f"{TEST_VERSION}", evidence)
    if result.get("code") != Code.OTA_BAD_SIGNATURE:
        return Outcome(Status.FAIL, f"refused with code {result.get('code')}, expected {int(Code.OTA_BAD_SIGNATURE)} "
                       "(the signatures do not verify)", evidence)
    seen = await retained_state(ctx.endpoint, ctx.did, client_id=f"certify-fw2-{ctx.did}",
                                within=ctx.timing.command_s)
    after = seen.body.get("firmware_version") if seen is not None and isinstance(seen.body, dict) else None
    if after == TEST_VERSION:
        return Outcome(Status.FAIL, "the unit now says it runs the refused image", evidence)
    extra = " without downloading it" if not downloads else ""
    return Outcome(Status.PASS, f"refused the badly signed image with code {int(Code.OTA_BAD_SIGNATURE)}{extra} "
                   "and reported the result", evidence)
