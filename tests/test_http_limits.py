"""The HTTP edge: bodies are capped however they are framed; every response carries the security headers."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator

import httpx

from ecohub.api.app import MAX_BODY
from ecohub.bootstrap import Services


async def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read_whole(hub: Services) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(150):  # 150 MB, chunked: no Content-Length to refuse up front
            yield b"x" * (1024 * 1024)

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the hub runs in this process

    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=30) as client:
        try:
            r = await client.post("/api/v1/auth/signup", content=chunks(),
                                  headers={"content-type": "application/json"})
            assert r.status_code == 413
            assert r.json()["error"]["code"] == "payload_too_large"
        except httpx.HTTPError:
            pass  # the hub may close the connection once it refused: either way it stopped reading
        # the hub did not hold the body: its peak memory grew by far less than the 150 MB sent
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 40 * 1024
        # and the hub is fine
        assert (await client.get("/api/v1/health")).status_code == 200


async def test_a_declared_length_over_the_limit_is_refused_at_once(hub: Services) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=30) as client:
        r = await client.post("/api/v1/auth/signup", content=b"{" + b" " * (MAX_BODY + 10) + b"}",
                              headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_security_headers_on_the_api_and_a_csp_on_the_console(hub: Services) -> None:
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=30) as client:
        api = await client.get("/api/v1/health")
        console = await client.get("/console/login")
    for r in (api, console):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
    csp = console.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
