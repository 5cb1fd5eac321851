"""Certification fixtures: one real hub per module and a product declaration that satisfies every profile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ecohub.api.app import create_app
from ecohub.auth import Principal
from ecohub.bootstrap import Services, bootstrap
from ecohub.certify.context import Timing
from ecohub.certify.domain import Declaration, evidence_required
from ecohub.certify.target import HubUnderTest, MqttAccess
from ecohub.hub import free_port, running_hub
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.helpers import DEFINITION

# Short command timeouts; generous start-up time because many device processes start at once on a busy machine, and
# time for the hub's twin to follow (a CI run at load 4+ once took > 2.5 s to show a restarted unit online).
TEST_TIMING = Timing(command_s=2.0, online_s=30.0, report_s=4.0, settle_s=5.0, will_s=6.0, reconnect_s=10.0,
                     hold_s=0.3)

DECLARATION: dict[str, Any] = {
    "vulnerability_disclosure": {"contact": "security@partner.example"},
    "support_period": {"end": "2035-12-31"},
    "secure_update": {"mechanism": "signed OTA over HTTPS", "signed": True},
    "privacy": {"personal_data": []},
    "limits": {"max_messages_per_s": 20, "max_payload_bytes": 8192},
}


def declaration() -> Declaration:
    """A complete, valid product declaration."""
    return Declaration.from_document(DECLARATION)


@asynccontextmanager
async def hub_with(data_dir: Path, models: list[str]) -> AsyncIterator[Services]:
    """A real hub (embedded broker, ingest, commands, API) on its own data dir, with products imported."""
    services = bootstrap(Settings(data_dir=data_dir))
    try:
        for name in models:
            services.products.import_spec(load_spec(name), model=name, actor="test", **DEFINITION)
        async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()) as hub:
            yield hub
    finally:
        services.close()


def under_test(hub: Services) -> HubUnderTest:
    """A running hub as the suite sees it: its API with a fresh operator token, its broker as the service user."""
    assert hub.runtime.http_url and hub.runtime.mqtt_port
    token = str(hub.tokens.create(role="operator", label="certify test")["token"])
    return HubUnderTest(api_url=hub.runtime.http_url, token=token,
                        mqtt=MqttAccess(host=hub.runtime.mqtt_host or "127.0.0.1", port=hub.runtime.mqtt_port,
                                        password=hub.service_password),
                        max_payload=hub.settings.mqtt.max_payload)


def record_evidence(services: Services, model: str, markets: list[str], *, valid_until: str = "2030-12-31",
                    caller: Principal | None = None) -> list[dict[str, Any]]:
    """A certificate (a small PDF) for every regime the markets' profiles need, as the brand records it."""
    table = services.certification.market_table()
    out = []
    for market in markets:
        for regime in evidence_required(table[market]):
            out.append(services.certification.evidence.add(
                model, market=market, regime=regime, issuer="TÜV Test Lab", number=f"{regime}-{market}-0001",
                valid_until=valid_until, file_name=f"{regime}.pdf", scope="radio, safety, EMC",
                content=b"%PDF-1.4 certificate " + f"{model} {market} {regime}".encode(), caller=caller))
    return out
