"""The HTTP side of push: signed POSTs to subscribers on aiohttp, one small connection pool per subscriber origin
(keep-alive, at most POOL_PER_ORIGIN connections each), the send timeout on the whole request, no redirects, no
cookies. aiohttp, not httpx, because a POST costs ≈ 0.1 ms of CPU on it against ≈ 1 to 1.5 ms on httpx/httpcore (pool
bookkeeping, anyio; measured in bench/RESULTS.md): at thousands of pushes a second that is the sender's whole budget.
The SSRF guard stays with the caller (checked right before each round's sends)."""

from __future__ import annotations

import urllib.request
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

POOL_PER_ORIGIN = 8  # connections (and requests in flight) per subscriber origin
READ_MAX = 64 * 1024  # what is read of an answer's body (to keep the connection); a longer one closes it


def origin(url: str) -> str:
    """scheme://host[:port] of a URL (the pool it is sent on)."""
    return "/".join(url.split("/", 3)[:3])


class Sender:
    """`async with Sender(timeout_s=5) as sender: error = await sender.post(url, body, headers)` (None on a 2xx)."""

    def __init__(self, *, timeout_s: float, per_origin: int = POOL_PER_ORIGIN) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.per_origin = per_origin
        self._pools: dict[str, tuple[aiohttp.ClientSession, str | None]] = {}

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pool (their connections)."""
        pools, self._pools = list(self._pools.values()), {}
        for pool, _ in pools:
            await pool.close()

    def _pool(self, url: str) -> tuple[aiohttp.ClientSession, str | None]:
        key = origin(url)
        pool = self._pools.get(key)
        if pool is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.per_origin, limit_per_host=self.per_origin),
                timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
            pool = self._pools[key] = (session, _env_proxy(url))
        return pool

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """POST `body`; → None for a 2xx answer, else what went wrong (`HTTP 503`, `TimeoutError: …`)."""
        session, proxy = self._pool(url)
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False, proxy=proxy) as r:
                await r.content.read(READ_MAX)
                return None if 200 <= r.status < 300 else f"HTTP {r.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            return f"{type(err).__name__}: {err}"[:300]


def _env_proxy(url: str) -> str | None:
    """The egress proxy the environment names for `url` (HTTP(S)_PROXY, NO_PROXY), as httpx used it: looked up once
    per origin (aiohttp's trust_env reads the environment and ~/.netrc again on every request, and would send netrc
    credentials to a subscriber)."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
