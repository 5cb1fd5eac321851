"""The webhook sender against real local servers: a 2xx is success, a redirect is not followed (the target gets
nothing), a subscriber slower than the timeout fails with a timeout, a refused connection is an error, keep-alive
connections are reused, and an egress proxy named by the environment is used."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ecohub.apps.sender import Sender


class Server:
    """Answers every POST with `status` (and `location`), after `delay_s`; counts requests and connections."""

    def __init__(self, status: int = 200, *, location: str = "", delay_s: float = 0.0) -> None:
        self.requests = 0
        self.paths: list[str] = []
        self.connections: set[int] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests += 1
                outer.paths.append(self.path)
                outer.connections.add(self.client_address[1])
                time.sleep(delay_s)
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="server").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for s in made:
        s.close()


def _post_all(url: str, n: int, *, timeout_s: float = 5.0) -> list[str | None]:
    async def go() -> list[str | None]:
        async with Sender(timeout_s=timeout_s) as sender:
            return [await sender.post(url, b'{"type":"x"}', {"content-type": "application/json"}) for _ in range(n)]
    return asyncio.run(go())


def test_success_reuses_the_connection(servers: list[Server]) -> None:
    servers.append(ok := Server())
    assert _post_all(ok.url, 5) == [None] * 5
    assert ok.requests == 5 and len(ok.connections) == 1  # one keep-alive connection for all five


def test_a_redirect_is_not_followed(servers: list[Server]) -> None:
    servers.append(target := Server())
    servers.append(redirecting := Server(307, location=target.url))
    assert _post_all(redirecting.url, 1) == ["HTTP 307"]
    assert target.requests == 0


def test_a_slow_subscriber_times_out(servers: list[Server]) -> None:
    servers.append(slow := Server(delay_s=1.5))
    [error] = _post_all(slow.url, 1, timeout_s=0.3)
    assert error is not None and error.startswith("TimeoutError")


def test_an_error_status_and_a_refused_connection_are_failures(servers: list[Server]) -> None:
    servers.append(down := Server(503))
    assert _post_all(down.url, 1) == ["HTTP 503"]
    closed = Server()
    url = closed.url
    closed.close()
    [error] = _post_all(url, 1)
    assert error is not None and "Connect" in error


def test_an_egress_proxy_from_the_environment_is_used(servers: list[Server], monkeypatch: pytest.MonkeyPatch) -> None:
    servers.append(proxy := Server())
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/hook"))
    assert _post_all("http://hooks.example.invalid/hook", 1) == [None]
    assert proxy.paths == ["http://hooks.example.invalid/hook"]  # the absolute form: a request through a proxy
