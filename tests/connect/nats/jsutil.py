"""Test helpers reading JetStream streams back as (did, id) pairs."""

from __future__ import annotations

import json
import secrets

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def read_ids(nc: nats.NATS, stream: str, filters: list[str] | None = None) -> list[tuple[str, int]]:
    """Every (did, id) stored in stream (through a throwaway AckNone pull consumer)."""
    js = nc.jetstream()
    name = f"audit_{secrets.token_hex(4)}"
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=filters,
            inactive_threshold=30,
        ),
    )
    psub = await js.pull_subscribe_bind(durable=name, stream=stream)
    out: list[tuple[str, int]] = []
    try:
        while True:
            try:
                msgs = await psub.fetch(1000, timeout=1.0)
            except NatsTimeout:
                break
            for m in msgs:
                with_id = json.loads(m.data)
                out.append((with_id["did"], with_id["id"]))
    finally:
        await js.delete_consumer(stream, name)
    return out
