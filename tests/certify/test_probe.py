"""The suite's own MQTT clients against a real broker and a real SDK device."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.connect.nats.test_sdk_link import device_and_impostor
from tests.helpers import eventually

ZOMBIE_WINDOW_S = 9.0  # gmqtt's own reconnect comes 6 s after a drop (its default delay)


async def test_the_impersonation_leaves_the_unit_alone_once_it_took_its_session_back(tmp_path: Path) -> None:
    """The unit reconnects while the suite still holds its session (a slow SUBACK under load): the suite's client,
    dropped by that, must not come back seconds later and drop the unit a second time (a CI run failed
    connect.reconnect that way: the unit's second return came after the 10 s the check waits)."""
    async with device_and_impostor(tmp_path) as (_hub, dev, take_over):
        for _ in range(3):  # the unit's first try may come after the hold (its jittered backoff): hold again
            before = dev.reconnects
            assert (await take_over(5.0))["connected"]
            if dev.reconnects > before:
                break
            await eventually(lambda: dev.reconnects > before, timeout=30)  # noqa: B023 (awaited here)
        else:
            raise AssertionError("the unit never came back while the suite held its session")
        back = dev.reconnects
        await asyncio.sleep(ZOMBIE_WINDOW_S)
        assert dev.reconnects == back, "the suite's client took the unit's session over again after it left"
        await eventually(lambda: dev.connected.is_set(), timeout=5)
