"""The console refuses state-changing requests that another site's page sends with the user's cookie (CSRF)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from tests.automate.conftest import make_home


def test_a_cross_origin_post_with_the_cookie_creates_no_rule(client: TestClient, services: Services) -> None:
    home = make_home(client, services)
    token = home.headers["Authorization"].removeprefix("Bearer ")
    client.cookies.set("ecohub_console", token, path="/console")
    form = {"home_id": home.home_id, "name": "evil", "when_did": home.sensor.did, "when_prop": "temperature",
            "then_did": home.plug.did, "then_prop": "switch.on", "then_value": "true"}
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"},
                    {"Sec-Fetch-Site": "cross-site"}):
        r = client.post("/console/automations", data=form, headers=headers)
        assert r.status_code == 403, headers
    assert services.automations.of_home(services.home.accounts.authenticate(token), home.home_id) == []
    # the console's own form, from its own origin, still works
    own = str(client.base_url).rstrip("/")
    r = client.post("/console/automations", data=form, headers={"Origin": own, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    assert [rule["name"] for rule in services.automations.of_home(services.home.accounts.authenticate(token),
                                                                  home.home_id)] == ["evil"]
