"""The data registry: every personal table is covered by a handler its owner registered, or the hub refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecohub.automate import privacy as automate_privacy
from ecohub.bootstrap import Services
from ecohub.connect import privacy as connect_privacy
from ecohub.home import privacy as home_privacy
from ecohub.privacy.datamap import personal_tables
from ecohub.privacy.domain import FREE_TEXT
from ecohub.privacy.models import DsrStep
from ecohub.privacy.registry import DataRegistry, UnhandledStores
from ecohub.privacy.service import PrivacyContext
from ecohub.twin import privacy as twin_privacy


def test_every_personal_table_is_handled_by_the_context_that_owns_it(services: Services) -> None:
    registry = services.privacy.registry
    registry.check()
    assert registry.unhandled() == [] and set(personal_tables()) <= set(registry.handlers)
    owner = {name: h.context for name, h in registry.handlers.items()}
    assert {owner["users"], owner["bindings"], owner["telemetry"], owner["twin_properties"], owner["commands"],
            owner["automation_runs"], owner["consents"]} == {"home", "telemetry", "twin", "connect", "automate",
                                                              "privacy"}
    order = registry.erase_order(personal_tables())
    for child, parent in (("automation_runs", "automation_rules"), ("automation_rules", "homes"),
                          ("bindings", "homes"), ("rooms", "homes"), ("homes", "users"), ("user_tokens", "users")):
        assert order.index(child) < order.index(parent), (child, parent)


def test_a_personal_table_no_handler_covers_fails_the_check_by_name(services: Services,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DsrStep.__privacy__, "detail", FREE_TEXT)  # type: ignore[attr-defined]
    assert "dsr_steps" in personal_tables()
    with pytest.raises(UnhandledStores) as err:
        services.privacy.registry.check()
    assert "cell.dsr_steps holds personal data but no context registered a handler for it" in err.value.message
    assert err.value.details["stores"] == ["dsr_steps"]


def test_the_privacy_context_refuses_a_registry_missing_a_context(services: Services, tmp_path: Path) -> None:
    registry = DataRegistry()
    home_privacy.register(registry, services.home.accounts, services.home.bindings)
    connect_privacy.register(registry)
    twin_privacy.register(registry)
    automate_privacy.register(registry)  # telemetry forgot to register
    with pytest.raises(UnhandledStores) as err:
        PrivacyContext.build(services.dbs, registry, keys=services.privacy.keys, sealer=services.sealer,
                             data_dir=tmp_path, secret_key=b"k" * 32)
    assert "cell.telemetry" in err.value.message and "cell.device_events" in err.value.message
    assert "cell.users" not in err.value.message
    with pytest.raises(ValueError, match="already handled by home"):
        home_privacy.register(registry, services.home.accounts, services.home.bindings)
