"""The SDK updater on its own: a download cut off mid-way resumes with a Range request where it stopped."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

from ecohub.protocol.messages import OtaUpdateParams
from ecohub.sdk.device import Device
from tests.conftest import load_spec


async def _flaky_server(image: bytes) -> tuple[asyncio.Server, list[str]]:
    """Serves `image`; the first response is cut off after half the bytes (a dropped link), later ones honour
    `Range: bytes=N-M` with 206."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        m = re.search(r"Range: bytes=(\d+)-(\d*)", head, re.I)
        seen.append(m.group(0) if m else "")
        start = int(m.group(1)) if m else 0
        end = int(m.group(2)) if m and m.group(2) else len(image) - 1
        body = image[start:end + 1]
        status = "206 Partial Content" if m else "200 OK"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                     f"Content-Range: bytes {start}-{end}/{len(image)}\r\n\r\n".encode())
        if len(seen) == 1:
            writer.write(body[:len(body) // 2])  # then the link drops
        else:
            writer.write(body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


async def test_a_dropped_download_resumes_where_it_stopped() -> None:
    image = os.urandom(300_000)
    server, seen = await _flaky_server(image)
    port = server.sockets[0].getsockname()[1]
    dev = Device(did="eu-0000000000000001", secret="x", spec=load_spec("cuco.plug.v3"), model="cuco.plug.v3")
    params = OtaUpdateParams(version="2.0.0", url=f"http://127.0.0.1:{port}/fw", size=len(image),
                             sha256=hashlib.sha256(image).hexdigest(), signatures=[])
    try:
        data = await dev.ota.download(params)
    finally:
        server.close()
        await server.wait_closed()
    assert data == image
    assert seen[0] == f"Range: bytes=0-{len(image) - 1}"
    half = len(image) // 2
    assert seen[1] == f"Range: bytes={half}-{len(image) - 1}"  # resumed, not restarted
    dev.ota.verify(params, data)  # hash and size match
