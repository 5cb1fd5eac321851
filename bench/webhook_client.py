"""CPU per webhook POST of the two HTTP clients the push sender could use, A/B in one run: httpx (an AsyncClient per
origin, as the sender used until 2026-12-01) and aiohttp (a ClientSession per origin, what `apps.sender` uses), 8
requests in flight on keep-alive connections to a plain asyncio HTTP/1.1 server in another process (so its parsing
does not count), bodies of 150 B (one event) and 15 KB (a batch of 100).

Usage::

    python bench/webhook_client.py [--requests 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

HEADERS = {"content-type": "application/json", "webhook-id": "msg_x"}


def serve(port_out: Any) -> None:
    """The subscriber: answers every POST with 204 on a free port (sent back through `port_out`)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)
    asyncio.run(main())


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(post: Callable[[], Awaitable[None]], n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `n` POSTs, 8 in flight, after a warm-up."""
    gate = asyncio.Semaphore(8)

    async def one() -> None:
        async with gate:
            await post()
    await asyncio.gather(*(one() for _ in range(50)))
    cpu, wall = cpu_s(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return cpu_s() - cpu, time.perf_counter() - wall


async def with_httpx(url: str, body: bytes, n: int) -> tuple[float, float]:
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=8, max_keepalive_connections=8)) as client:
        async def post() -> None:
            r = await client.post(url, content=body, headers=HEADERS, timeout=5, follow_redirects=False)
            assert r.status_code == 204
        return await measure(post, n)


async def with_aiohttp(url: str, body: bytes, n: int) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8), cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=5)) as session:
        async def post() -> None:
            async with session.post(url, data=body, headers=HEADERS, allow_redirects=False) as r:
                await r.content.read(65536)
                assert r.status == 204
        return await measure(post, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get()}/hook"
    try:
        for size in (150, 15_000):
            for _ in range(args.rounds):
                for name, run in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
                    cpu, wall = asyncio.run(run(url, b"x" * size, args.requests))
                    print(f"{name:8s} body {size:6d} B: {1e6 * cpu / args.requests:7.1f} µs CPU a request, "
                          f"{args.requests / wall:7.0f} requests/s", flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
