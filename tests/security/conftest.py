"""Fixtures of the security audit tests: settings with a webhook receiver (a tiny real HTTP server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ecohub.settings import Settings


class Receiver:
    """What the operator's webhook endpoint got."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.url = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free port that records the JSON bodies POSTed to it."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.posts.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/security"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(tmp_path: Path, receiver: Receiver) -> Settings:
    """Settings on a temp data dir; critical findings go to the receiver (a private address: allowed here)."""
    return Settings(data_dir=tmp_path / "data", webhooks={"allow_private": True},
                    security={"webhook_url": receiver.url})
