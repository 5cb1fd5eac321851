"""OTA fixtures: a partner with a signing key, its product, approved images, simulated devices that trust both keys."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ecohub.bootstrap import Services
from ecohub.protocol.messages import firmware_statement
from ecohub.sdk.faults import FAULTS
from ecohub.sdk.simulator import SimulatedDevice
from ecohub.settings import OtaSettings, Settings
from tests.conftest import load_spec
from tests.helpers import DEFINITION, migrated

MODEL = "cuco.plug.v3"
PARTNER = "cuco"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fast campaign tick (the engine also reacts at once to every report)."""
    return Settings(data_dir=migrated(tmp_path), ota=OtaSettings(tick_s=0.2, offer_retry_s=1.0))


def sign(key: Ed25519PrivateKey, model: str, version: str, image: bytes) -> str:
    """The partner's signature of an image, as its build pipeline makes it."""
    import hashlib
    return base64.b64encode(key.sign(firmware_statement(model, version, hashlib.sha256(image).hexdigest(),
                                                        len(image)))).decode()


def raw_b64(key: Ed25519PrivateKey) -> str:
    """base64 of the raw public key."""
    return base64.b64encode(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)).decode()


@dataclass
class Vendor:
    """The partner's side: its key, its product, and images it uploads."""

    services: Services
    key: Ed25519PrivateKey
    model: str = MODEL
    devices: list[SimulatedDevice] = field(default_factory=list)

    def image(self, version: str, *, size: int = 200_000, approve: bool = True) -> tuple[dict[str, Any], bytes]:
        """Upload (and approve) an image of `size` random bytes."""
        data = os.urandom(size)
        img = self.services.firmware.upload([data], model=self.model, version=version,
                                            signature=sign(self.key, self.model, version, data))
        if approve:
            img = self.services.firmware.approve(img["image_id"], actor="operator:test")
        return img, data

    def trust(self) -> dict[str, str]:
        """The keys the firmware pins."""
        return {"partner": raw_b64(self.key), "brand": self.services.firmware.brand_public()["public_key"]}

    def provision(self, n: int) -> list[dict[str, str]]:
        return [d.to_dict() for d in self.services.devices.provision(model=self.model, count=n)]

    def device(self, creds: dict[str, str], *, fault: str | None = None, version: str = "1.0.0") -> SimulatedDevice:
        dev = SimulatedDevice(did=creds["did"], secret=creds["secret"], spec=load_spec(self.model),
                              port=self.services.runtime.mqtt_port or 0, model=self.model, firmware_version=version,
                              ota_trust=self.trust(), fault=FAULTS[fault] if fault else None)
        self.devices.append(dev)
        return dev

    async def fleet(self, n: int, *, fault: str | None = None, version: str = "1.0.0") -> list[SimulatedDevice]:
        devs = [self.device(c, fault=fault, version=version) for c in self.provision(n)]
        for d in devs:
            await d.connect()
        return devs


@pytest.fixture
def vendor_for(services: Services) -> Callable[[], Vendor]:
    """A partner with a registered signing key and a product at certification."""

    def make() -> Vendor:
        services.ecosystem.partners.add(name="Cuco", partner_id=PARTNER, country="CN", founded_on="2015-01-01",
                                        actor="test")
        services.products.import_spec(load_spec(MODEL), model=MODEL, actor="test", partner_id=PARTNER,
                                      **DEFINITION)
        key = Ed25519PrivateKey.generate()
        services.firmware.add_key(PARTNER, raw_b64(key))
        return Vendor(services, key)

    return make


@pytest.fixture
async def vendor(hub: Services, vendor_for: Callable[[], Vendor]) -> AsyncIterator[Vendor]:
    """The vendor on a running hub; its simulated devices are disconnected afterwards."""
    v = vendor_for()
    yield v
    for d in v.devices:
        await d.disconnect()


Waiter = Callable[..., Coroutine[Any, Any, Any]]
