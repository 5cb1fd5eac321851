"""NatsCluster: N EmbeddedNats nodes routed together (JetStream + MQTT on every node) on free ports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Any

from ecohub.connect.nats.config import ClusterSpec
from ecohub.connect.nats.server import EmbeddedNats, free_port


class NatsCluster:
    """Async context manager for a static full-mesh cluster; MQTT streams replicated `mqtt_stream_replicas` times."""

    def __init__(
        self,
        base_dir: Path | str,
        *,
        size: int = 3,
        name: str = "ecohub",
        host: str = "127.0.0.1",
        mqtt_stream_replicas: int = 3,
        **node_kw: Any,
    ) -> None:
        base = Path(base_dir)
        route_ports = [free_port(host) for _ in range(size)]
        self.nodes = [
            EmbeddedNats(
                base / f"n{i}",
                host=host,
                server_name=f"{name}-n{i}",
                cluster=ClusterSpec(
                    name=name,
                    port=route_ports[i],
                    host=host,
                    routes=tuple(p for j, p in enumerate(route_ports) if j != i),
                ),
                mqtt_stream_replicas=mqtt_stream_replicas,
                **node_kw,
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node."""
        return [n.url for n in self.nodes]

    def node(self, server_name: str) -> EmbeddedNats:
        """The node with that server_name."""
        return next(n for n in self.nodes if n.server_name == server_name)

    async def start(self, timeout: float = 30.0) -> NatsCluster:  # noqa: ASYNC109
        """Spawn all nodes, then wait until each is healthy (JetStream meta leader elected)."""
        for n in self.nodes:
            await n.start_nowait()
        await asyncio.gather(*(n.wait_ready(timeout) for n in self.nodes))
        return self

    async def stop(self) -> None:
        """Stop every node."""
        await asyncio.gather(*(n.stop() for n in self.nodes))

    async def __aenter__(self) -> NatsCluster:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
