"""Faults a simulated device can be told to have, so the certification suite can prove it catches them."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecohub.protocol import Code, Method, Topic
from ecohub.protocol.messages import DownMessage, encode
from ecohub.sdk.device import Device
from ecohub.spec.compiled import out_of_range_value


@dataclass(frozen=True, slots=True)
class Fault:
    """A named misbehaviour: what it breaks, and the hooks that produce it."""

    name: str
    description: str
    wrong_value: Callable[[Device, int, int, random.Random], Any] | None = None
    on_request: Callable[[Device, DownMessage], bool] | None = None  # True: the fault handled it
    on_connect: Callable[[Device], None] | None = None
    wrong_event_args: bool = False
    shared_secret: bool = False  # every unit presents the first unit's secret (a default/shared password)
    ota: str | None = None  # how its firmware updater misbehaves (see sdk.simulator.FaultyOta)


def _out_of_range(dev: Device, siid: int, piid: int, rnd: random.Random) -> Any:
    return out_of_range_value(dev.compiled.properties[(siid, piid)].prop)


def _wrong_type(dev: Device, siid: int, piid: int, rnd: random.Random) -> Any:
    fmt = dev.compiled.properties[(siid, piid)].prop.format
    return 12345 if fmt == "string" else "not-a-number"


def _no_reply(dev: Device, request: DownMessage) -> bool:
    return True


def _ignores_set(dev: Device, request: DownMessage) -> bool:
    if request.method != Method.SET_PROPERTIES:
        return False
    dev.reply(request.id, result=[{"siid": p["siid"], "piid": p["piid"], "code": Code.OK} for p in request.params])
    return True


def _foreign_topic(dev: Device) -> None:
    other = dev.did[:-4] + ("0000" if not dev.did.endswith("0000") else "ffff")
    dev.publish_raw(Topic.up(other), encode({"id": 1, "method": Method.PROPERTIES_CHANGED, "params": []}))
    if dev._client is not None:
        dev._client.subscribe(Topic.down(other), qos=1)


def _no_reconnect(dev: Device) -> None:
    dev.reconnect = False


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("out-of-range", "reports values outside the declared range", wrong_value=_out_of_range),
        Fault("wrong-type", "reports values of the wrong type", wrong_value=_wrong_type),
        Fault("no-reply", "never answers cloud requests", on_request=_no_reply),
        Fault("ignores-set", "acknowledges set_properties but does not change", on_request=_ignores_set),
        Fault("wrong-event-args", "sends events with undeclared arguments", wrong_event_args=True),
        Fault("foreign-topic", "publishes to and subscribes on another device's topics", on_connect=_foreign_topic),
        Fault("no-reconnect", "stays offline once the broker drops the connection", on_connect=_no_reconnect),
        Fault("shared-secret", "every unit uses the same (first unit's) secret instead of its own",
              shared_secret=True),
        Fault("ota-bad-hash", "firmware downloads arrive corrupted (the device reports a hash mismatch)",
              ota="bad-hash"),
        Fault("ota-bad-signature", "installs firmware without checking its signatures (insecure updater)",
              ota="bad-signature"),
        Fault("ota-install-fails", "every firmware install fails", ota="install-fails"),
        Fault("ota-reverts", "reports an update done but reboots into its old firmware", ota="reverts"),
    )
}
