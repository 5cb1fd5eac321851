"""Webhook subscriptions under the production URL policy: private, loopback and metadata addresses are refused."""

from __future__ import annotations

from tests.apps.conftest import World
from tests.home.conftest import bearer


def test_webhook_to_a_private_address_is_refused(world: World) -> None:
    world.console_login()
    token = bearer(world.tokens()["access_token"])
    cid = world.app["client_id"]
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/x",
                "http://metadata.google.internal/x", "ftp://example.org/x"):
        r = world.http.post(f"/api/v1/apps/{cid}/webhooks", headers=token, json={"url": url})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unsafe_url", (url, r.text)
    r = world.http.post(f"/api/v1/apps/{cid}/webhooks", headers=token,
                        json={"url": "https://example.org/x", "events": ["device.nonsense"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_event_type"
    # another app's id with this token: refused
    r = world.http.post("/api/v1/apps/app_other/webhooks", headers=token, json={"url": "https://example.org/x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_app"
