"""Revocation: find a device's live MQTT connections cluster-wide (CONNZ by mqtt_client) and KICK them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

CONNZ_PING = "$SYS.REQ.SERVER.PING.CONNZ"
KICK = "$SYS.REQ.SERVER.{server_id}.KICK"


async def gather(
    nc: NATS, subject: str, payload: dict[str, Any], *, window: float = 0.5, expected: int | None = None
) -> list[dict[str, Any]]:
    """Publish a request and collect every server's answer for `window` seconds (or until `expected` answers)."""
    inbox = nc.new_inbox()
    answers: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def cb(m: Msg) -> None:
        answers.append(json.loads(m.data))
        if expected is not None and len(answers) >= expected:
            done.set()

    sub = await nc.subscribe(inbox, cb=cb)
    try:
        await nc.publish(subject, json.dumps(payload).encode(), reply=inbox)
        await nc.flush()
        try:
            await asyncio.wait_for(done.wait(), window)
        except TimeoutError:
            pass
    finally:
        if not nc.is_closed:  # the hub may be closing the connection meanwhile: nothing left to unsubscribe then
            await sub.unsubscribe()
    return answers


async def sessions(nc: NATS, did: str, *, window: float = 0.5, expected: int | None = None) -> list[tuple[str, int]]:
    """(server id, client id) of every open MQTT connection whose client id is did (system-account connection)."""
    found: list[tuple[str, int]] = []
    for answer in await gather(nc, CONNZ_PING, {"mqtt_client": did}, window=window, expected=expected):
        server_id = answer.get("server", {}).get("id", "")
        for conn in (answer.get("data") or {}).get("connections") or []:
            found.append((server_id, int(conn["cid"])))
    return found


async def kick(nc: NATS, did: str, *, window: float = 0.5, expected: int | None = None) -> int:
    """Disconnect every live session of did; returns how many were kicked. Revoke the secret first."""
    kicked = 0
    for server_id, cid in await sessions(nc, did, window=window, expected=expected):
        reply = await nc.request(KICK.format(server_id=server_id), json.dumps({"cid": cid}).encode(), timeout=2)
        if not json.loads(reply.data).get("error"):
            kicked += 1
    return kicked
