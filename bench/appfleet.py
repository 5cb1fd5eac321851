"""Shared by the benchmarks that need apps: one user owning the devices, K apps each granted all of them with one
webhook each (what `bench/push.py` fans out to, and what `bench/ingest.py --subscribed K` stages per message)."""

from __future__ import annotations

from typing import Any

from ecohub.auth import Principal, Role

EMAIL, PASSWORD = "bench@example.org", "bench password 123"


def grant_fleet(services: Any, devices: list[Any], urls: list[str], *, country: str = "DE",
                batch_max: int = 1) -> Principal:
    """Bind `devices` (as provisioned: did, bind_code) to a new user's home and give one app per URL a grant of
    all of them and a webhook to that URL, batching up to `batch_max` messages a POST (local subscribers need
    `webhooks.allow_private`); → the user."""
    acc = services.home.accounts
    acc.signup(email=EMAIL, password=PASSWORD, country=country)
    user: Principal = acc.authenticate(acc.signin(email=EMAIL, password=PASSWORD)["access_token"])
    home_id = services.home.homes.create(user, "bench")["home_id"]
    for d in devices:
        services.home.bindings.claim(user, home_id, did=d.did, code=d.bind_code)
    dids = [d.did for d in devices]
    apps = services.apps
    for i, url in enumerate(urls):
        app = apps.registry.create(name=f"bench {i}", redirect_uris=["https://bench.example/cb"])
        grant = apps.grants.approve(user, app["client_id"], ["devices:read"], dids)
        p = Principal(Role.APP, user.subject, cell=user.cell, app_id=app["client_id"],
                      scopes=frozenset({"devices:read"}), dids=frozenset(dids), grant_id=grant.grant_id)
        apps.push.subscribe(p, app["client_id"], url=url, batch_max=batch_max)
    return user
