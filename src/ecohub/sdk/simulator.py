"""The fleet simulator: N SDK devices reporting values drawn inside their spec, optionally with a fault."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecohub.protocol import Code
from ecohub.protocol.messages import DownMessage, OtaUpdateParams
from ecohub.sdk.device import Device, DeviceError
from ecohub.sdk.faults import FAULTS, Fault
from ecohub.sdk.ota import OtaFailure, OtaHandler, Updatable
from ecohub.spec import Spec
from ecohub.spec.compiled import random_value

log = logging.getLogger(__name__)



@dataclass
class FleetStats:
    """What the fleet did."""

    connected: int = 0
    failed: int = 0
    reports: int = 0
    events: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


class FaultyOta(OtaHandler):
    """The SDK's updater with one of the simulator's OTA faults (`Fault.ota`)."""

    def __init__(self, device: Updatable, *, fault: str | None, **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        self.fault = fault

    def received(self, data: bytes) -> bytes:
        if self.fault == "bad-hash" and data:
            return bytes([data[0] ^ 0xFF]) + data[1:]
        return data

    def verify_signatures(self, params: OtaUpdateParams) -> None:
        if self.fault == "bad-signature":
            return  # the insecure updater: installs whatever it is sent, signed or not
        super().verify_signatures(params)

    async def install(self, params: OtaUpdateParams, data: bytes) -> None:
        if self.fault == "install-fails":
            raise OtaFailure(Code.OTA_INSTALL_FAILED, "flash write failed (simulated)")
        if self.fault == "reverts":
            self.device.announce_state()  # the boot loader fell back to the old image: same version again
            return
        await super().install(params, data)


class SimulatedDevice(Device):
    """A Device that reports on its own at a rate, with values that wander inside the spec."""

    def __init__(self, *, fault: Fault | None = None, seed: int = 0, **kwargs: Any) -> None:
        self.fault = fault  # before the base class builds the updater, which takes the fault
        super().__init__(**kwargs)
        self.rnd = random.Random(seed)
        self.notify_props = [cp.prop for cp in self.compiled.properties.values() if cp.notifies or cp.readable]
        for cp in self.compiled.properties.values():  # every property has a value, so actions can answer
            self.values[(cp.prop.siid, cp.prop.iid)] = random_value(cp.prop, self.rnd)

    def make_ota(self, trust: dict[str, Any]) -> OtaHandler:
        return FaultyOta(self, trust=trust, fault=self.fault.ota if self.fault else None)

    def on_reconnected(self) -> None:
        self.report_all()  # back after the broker dropped it (announced online again): refresh the cloud's view

    async def connect(self) -> None:
        await super().connect()
        if self.fault and self.fault.on_connect:
            self.fault.on_connect(self)

    async def handle(self, request: DownMessage) -> None:
        if self.fault and self.fault.on_request and self.fault.on_request(self, request):
            return
        await super().handle(request)

    def step(self) -> tuple[int, int]:
        """Report a few properties (and now and then an event); returns (reports, events) sent."""
        if not self.notify_props:
            return 0, 0
        picks = self.rnd.sample(self.notify_props, k=min(len(self.notify_props), self.rnd.randint(1, 3)))
        values: dict[tuple[int, int], Any] = {}
        for p in picks:
            if self.fault and self.fault.wrong_value:
                bad = self.fault.wrong_value(self, p.siid, p.iid, self.rnd)
                if bad is not None:
                    values[(p.siid, p.iid)] = bad
                    continue
            values[(p.siid, p.iid)] = random_value(p, self.rnd)
        self.report(values, validate=not (self.fault and self.fault.wrong_value))
        events = 0
        if self.compiled.events and self.rnd.random() < 0.1:
            (siid, eiid), ev = self.rnd.choice(list(self.compiled.events.items()))
            args = {piid: random_value(self.compiled.properties[(siid, piid)].prop, self.rnd) for piid in ev.arguments}
            if self.fault and self.fault.wrong_event_args:
                args[max([*ev.arguments, 0]) + 100] = 1
            self.emit_event(siid, eiid, args)
            events = 1
        return 1, events

    def report_all(self) -> None:
        """Report every readable/notify property once (what a device does after connecting)."""
        if not self.notify_props:
            return
        values = {(p.siid, p.iid): self.values[(p.siid, p.iid)] for p in self.notify_props}
        if self.fault and self.fault.wrong_value:
            for siid, piid in values:
                bad = self.fault.wrong_value(self, siid, piid, self.rnd)
                if bad is not None:
                    values[(siid, piid)] = bad
        self.report(values, validate=not (self.fault and self.fault.wrong_value))

    def emit_all_events(self) -> int:
        """Emit each declared event once with valid arguments (a start-up self-test, so tests and certification
        see every event); returns how many were sent."""
        for (siid, eiid), ev in self.compiled.events.items():
            args = {piid: self.values[(siid, piid)] for piid in ev.arguments}
            if self.fault and self.fault.wrong_event_args:
                args[max([*ev.arguments, 0]) + 100] = 1
            self.emit_event(siid, eiid, args)
        return len(self.compiled.events)


async def run_fleet(creds: list[dict[str, str]], specs: dict[str, Spec], *, host: str, port: int,
                    rate_hz: float = 1.0, duration_s: float | None = None, fault: str | None = None,
                    mqtt_version: int = 4, seed: int = 1, connect_concurrency: int = 50,
                    on_progress: Callable[[FleetStats], None] | None = None, firmware_version: str | None = None,
                    ota_trust: dict[str, Any] | None = None,
                    devices_out: list[SimulatedDevice] | None = None) -> FleetStats:
    """Run the fleet until `duration_s` passes (or forever); returns what it did."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    stats = FleetStats()
    gate = asyncio.Semaphore(connect_concurrency)
    chosen = FAULTS.get(fault or "")
    shared = creds[0]["secret"] if chosen is not None and chosen.shared_secret and creds else None
    devices = [SimulatedDevice(did=c["did"], secret=shared or c["secret"], spec=specs[c["model"]], host=host,
                               port=port, mqtt_version=mqtt_version, fault=chosen, seed=seed + i, model=c["model"],
                               firmware_version=firmware_version, ota_trust=ota_trust)
               for i, c in enumerate(creds)]
    if devices_out is not None:
        devices_out.extend(devices)

    async def live(dev: SimulatedDevice) -> None:
        async with gate:
            try:
                await dev.connect()
            except DeviceError as err:
                stats.failed += 1
                stats.errors.append(str(err))
                return
        stats.connected += 1
        try:
            dev.report_all()
            stats.events += dev.emit_all_events()
            period = 1.0 / rate_hz if rate_hz > 0 else None
            await asyncio.sleep(dev.rnd.random() * (period or 1))
            while True:
                if period is None:
                    await asyncio.sleep(3600)
                    continue
                if not dev.connected.is_set():  # the broker dropped it: it reconnects by itself, then reports
                    await asyncio.sleep(period)
                    continue
                r, e = dev.step()
                stats.reports += r
                stats.events += e
                await asyncio.sleep(period)
        finally:
            stats.requests += len(dev.received)
            await dev.disconnect()

    tasks = [asyncio.create_task(live(d), name=f"device-{d.did}") for d in devices]

    async def progress() -> None:
        while True:
            await asyncio.sleep(0.5)
            if on_progress:
                on_progress(stats)

    reporter = asyncio.create_task(progress(), name="fleet-progress")
    try:
        if duration_s is None:
            await asyncio.gather(*tasks)
        else:
            await asyncio.sleep(duration_s)
    finally:
        reporter.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if on_progress:
            on_progress(stats)
    return stats


def main(argv: list[str] | None = None) -> None:
    """Run simulated devices from a spec file and a credentials file, without the hub installed (light start-up):
    `python -m ecohub.sdk.simulator --spec SPEC.json --credentials CREDS.json --host H --port P [--fault KIND]`."""
    import argparse
    import json
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ecohub.spec import parse_spec

    parser = argparse.ArgumentParser(prog="python -m ecohub.sdk.simulator", description=main.__doc__)
    parser.add_argument("--spec", type=Path, required=True, help="the product's spec document (JSON)")
    parser.add_argument("--credentials", type=Path, required=True, help="JSON list of {did, secret, model}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1.0, help="reports per second per device")
    parser.add_argument("--fault", choices=sorted(FAULTS), default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: until killed)")
    parser.add_argument("--firmware-version", default=None, help="the firmware version the devices say they run")
    parser.add_argument("--ota-trust", type=Path, default=None,
                        help='JSON {"partner": b64 key, "brand": b64 key}: pinned keys that enable firmware updates')
    parser.add_argument("--ota-test-keys", action="store_true",
                        help="enable firmware updates with freshly made keys pinned (a test unit: it trusts no image "
                        "anyone else signed)")
    args = parser.parse_args(argv)
    spec = parse_spec(json.loads(args.spec.read_text()))
    creds = json.loads(args.credentials.read_text())
    specs = {c["model"]: spec for c in creds}
    trust = json.loads(args.ota_trust.read_text()) if args.ota_trust else None
    if trust is None and args.ota_test_keys:
        trust = {by: Ed25519PrivateKey.generate().public_key() for by in ("partner", "brand")}
    asyncio.run(run_fleet(creds, specs, host=args.host, port=args.port, rate_hz=args.rate, duration_s=args.duration,
                          fault=args.fault, firmware_version=args.firmware_version, ota_trust=trust))


if __name__ == "__main__":
    main()
