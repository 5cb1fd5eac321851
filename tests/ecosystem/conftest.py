"""Fixtures of the ecosystem tests: real services on SQLite files, certification evidence as a plain dict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecohub.bootstrap import Services, bootstrap
from ecohub.settings import Settings
from tests.conftest import load_spec

SPECS = Path(__file__).parent.parent / "fixtures" / "specs"


def spec(name: str = "cuco.plug.v3") -> dict[str, Any]:
    """A recorded real miot-spec-v2 document (the plug unless named)."""
    return load_spec(name)


@pytest.fixture
def eco(tmp_path: Path) -> Iterator[Services]:
    """Migrated services on a temp data dir."""
    services = bootstrap(Settings(data_dir=tmp_path / "data"))
    yield services
    services.close()


@pytest.fixture
def passed(eco: Services) -> dict[str, set[str]]:
    """Markets with a passing certification report per model: the stand-in for the certify context."""
    evidence: dict[str, set[str]] = {}
    eco.products.use_certification(lambda model, _spec_hash: frozenset(evidence.get(model, set())))
    return evidence


@pytest.fixture
def partner(eco: Services) -> str:
    """A registered ecosystem partner founded in 2015."""
    eco.ecosystem.partners.add(name="Acme Robotics", partner_id="acme", country="CN", founded_on="2015-03-01",
                               contact_role="partnerships", contact_email="partners@acme.example", actor="test")
    return "acme"


@pytest.fixture
def product(eco: Services, partner: str) -> str:
    """A plug of that partner at certification, targeting DE and US."""
    eco.products.import_spec(spec(), model="acme.plug.v1", actor="test", partner_id=partner, category="plug",
                             target_markets=["DE", "US"], target_price="19.99", forecast_volume=100_000)
    return "acme.plug.v1"
