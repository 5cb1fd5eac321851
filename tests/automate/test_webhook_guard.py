"""Webhooks go to public addresses only: the rule is refused at save time, and checked again at send time."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.netguard import UrlPolicy
from ecohub.settings import Settings
from tests.automate.conftest import Home, Sink
from tests.home.conftest import signup

TARGETS = ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:6379/", "http://10.1.2.3/hook",
           "http://[::1]:8080/", "http://2130706433/", "http://0x7f000001/", "http://localhost:9/",
           "http://192.168.1.1/", "http://[::ffff:127.0.0.1]/", "http://metadata.google.internal/"]


@pytest.mark.parametrize("url", TARGETS)
def test_a_rule_with_a_webhook_to_a_private_or_metadata_address_is_refused(tmp_path: Path, url: str) -> None:
    services = bootstrap(Settings(data_dir=tmp_path / "data"))  # the default: no private webhook targets
    try:
        with TestClient(create_app(services)) as client:
            headers = signup(client, "sam@example.org")["headers"]
            home = client.post("/api/v1/homes", json={"name": "Home"}, headers=headers).json()["home_id"]
            doc = {"name": "ping", "triggers": [{"type": "schedule", "cron": "0 * * * *"}],
                   "actions": [{"type": "webhook", "url": url}]}
            r = client.post(f"/api/v1/homes/{home}/automations", json=doc, headers=headers)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "unsafe_url" and "actions[0].url" in err["message"]
    finally:
        services.close()


def test_a_public_address_passes_and_https_is_required_in_production() -> None:
    assert UrlPolicy().check("http://93.184.216.34/hook") == ["93.184.216.34"]
    with pytest.raises(Exception, match="https"):
        UrlPolicy(require_https=True).check("http://93.184.216.34/hook")


async def test_a_saved_webhook_whose_target_turns_private_is_not_sent(
        hub: Services, hub_home: tuple[Home, httpx.AsyncClient], sink: Sink) -> None:
    """DNS rebinding: the send-time check refuses what the save-time check let through."""
    home, http = hub_home
    doc = {"name": "warm", "triggers": [{"type": "schedule", "cron": "0 * * * *"}],
           "actions": [{"type": "webhook", "url": f"{sink.url}/hook"}]}
    r = await http.post(f"/api/v1/homes/{home.home_id}/automations", json=doc, headers=home.headers)
    assert r.status_code == 201, r.text  # this hub allows loopback targets (the sink) at save time
    engine = hub.automations.engine
    assert engine is not None
    engine.runner.url_policy = UrlPolicy()  # by send time the name no longer passes
    run = (await http.post(f"/api/v1/automations/{r.json()['rule_id']}/run", headers=home.headers)).json()
    assert run["actions"][0]["ok"] is False and run["actions"][0]["error"] == "unsafe_url"
    assert sink.received == []
