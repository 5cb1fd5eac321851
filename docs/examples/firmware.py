"""Minimal firmware for a dimmable spot light on the ecohub device SDK (spec: a miot-spec-v2 light document).

On a bench against a running hub (credentials from `ecohub device provision`):

    python docs/examples/firmware.py --spec light.json --did eu-… --secret … --host 127.0.0.1 --port 1883

Under certification the suite starts it for two test units; with no arguments it reads what `ecohub certify run`
puts in its environment (ECOHUB_CREDENTIALS, ECOHUB_SPEC, ECOHUB_HOST, ECOHUB_PORT):

    ecohub certify run --model acme.light.spot1 --device-cmd "python docs/examples/firmware.py"

Firmware updates: the SDK's updater installs an image only when both pinned keys verify it — the partner's
(`ecohub firmware key new`) and the brand's (`GET /api/v1/firmware/brand-key`); give them as a JSON file
`{"partner": "<base64>", "brand": "<base64>"}` with `--ota-keys` (without, every offer is refused with -4023).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from typing import Any

from ecohub.protocol import Code
from ecohub.sdk.device import Device

log = logging.getLogger("firmware")

FIRMWARE_VERSION = "1.0.3"
HEARTBEAT_S = 60.0  # report the state now and then, well inside any declared message-rate limit

# What the light starts with after power-on: (siid, piid) → value, every readable property of the spec.
POWER_ON_STATE: dict[tuple[int, int], Any] = {
    (1, 1): "Acme", (1, 2): "acme.light.spot1", (1, 4): FIRMWARE_VERSION,
    (2, 1): True,  # on
    (2, 2): 80,  # brightness %
    (2, 3): 4000,  # colour temperature K
    (2, 4): 0,  # default power-on state
    (2, 5): 0,  # mode
    (2, 6): False,  # flex switch
    (2, 7): 1.0, (2, 8): 1.0,  # off/on gradient seconds
    (4, 1): False, (4, 2): 10, (4, 3): 0,  # delayed off: enabled, minutes, remaining
}


class Light(Device):
    """One spot light: drives the LED on writes, reports its state, comes back by itself after the broker drops it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(firmware_version=FIRMWARE_VERSION, **kwargs)  # said in every online state
        self.values.update(POWER_ON_STATE)
        self.values[(1, 3)] = self.did  # the serial number is the unit's own
        self.on_set = self.apply  # called for valid writes to writable properties (the SDK refuses the rest)
        self.ota.on_install = self.flash  # called with a verified image (hash, size and both signatures)

    async def apply(self, siid: int, piid: int, value: Any) -> int:
        """Drive the hardware; a non-zero code refuses the write (e.g. Code.DEVICE_BUSY while updating)."""
        log.info("%s: set %s.%s = %r", self.did, siid, piid, value)  # here: PWM duty, relay, colour mix …
        return Code.OK

    def flash(self, image: bytes, params: Any) -> int:
        """Write a verified image to the inactive slot and mark it to boot; a non-zero code reports -4024."""
        log.info("%s: flashing %s (%d bytes)", self.did, params.version, len(image))  # here: the A/B partition
        return Code.OK

    def report_state(self) -> None:
        """Report every readable property (after connecting, and as a heartbeat)."""
        readable = [k for k, cp in self.compiled.properties.items() if cp.readable or cp.notifies]
        self.report({k: self.values[k] for k in readable})

    def on_reconnected(self) -> None:
        """The SDK reconnects by itself (backoff with jitter), subscribes to `down` and says online again; the
        product reports its state, which a restarted broker has forgotten."""
        self.report_state()

    async def connect(self) -> None:
        await super().connect()  # subscribes to its down topic, publishes {"online": true} retained, sets the will
        self.report_state()


async def run(units: list[dict[str, str]], spec: dict[str, Any], host: str, port: int, *, model: str | None = None,
              ota_keys: dict[str, str] | None = None) -> None:
    """Run one Light per unit until killed."""
    lights = [Light(did=u["did"], secret=u["secret"], spec=spec, host=host, port=port, model=u.get("model", model),
                    ota_trust=ota_keys) for u in units]
    for light in lights:
        await light.connect()
    try:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for light in lights:
                if light.connected.is_set():
                    light.report_state()
    finally:
        for light in lights:
            await light.disconnect()


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments (or the certification environment) and run."""
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=env.get("ECOHUB_SPEC"), help="the product's spec document (JSON)")
    parser.add_argument("--credentials", default=env.get("ECOHUB_CREDENTIALS"), help="JSON list of {did, secret}")
    parser.add_argument("--did", default=env.get("ECOHUB_DID"))
    parser.add_argument("--secret", default=env.get("ECOHUB_SECRET"))
    parser.add_argument("--host", default=env.get("ECOHUB_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("ECOHUB_PORT", "1883")))
    parser.add_argument("--model", default=env.get("ECOHUB_MODEL"), help="the product's model id")
    parser.add_argument("--ota-keys", default=env.get("ECOHUB_OTA_KEYS"), help="JSON file of the pinned keys")
    args = parser.parse_args(argv)
    if not args.spec:
        parser.error("--spec (or ECOHUB_SPEC) is required")
    with open(args.spec) as f:
        spec = json.load(f)
    if args.credentials:
        with open(args.credentials) as f:
            units = json.load(f)
    elif args.did and args.secret:
        units = [{"did": args.did, "secret": args.secret}]
    else:
        parser.error("give --credentials, or --did and --secret (or the ECOHUB_* environment)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ota_keys = None
    if args.ota_keys:
        with open(args.ota_keys) as f:
            ota_keys = json.load(f)
    asyncio.run(run(units, spec, args.host, args.port, model=args.model, ota_keys=ota_keys))


if __name__ == "__main__":
    main()
