"""Every /api/v1 route declares who may call it: walk the OpenAPI document and knock on each door.

Each route must refuse a caller without a token (401). A route that names an owned resource in its path (a home,
room, member, device, product or partner) must also refuse a user and a partner who have nothing to do with it
(403/404); any other route must refuse at least one role.
Only the routes listed in PUBLIC (anyone) and ANY_ROLE (every authenticated caller, acting on itself) are exempt.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Depends
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.api.deps import require
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from tests.conftest import load_spec
from tests.helpers import DEFINITION, PNG
from tests.home.conftest import bearer, signup

PUBLIC = {("GET", "/api/v1/health"), ("POST", "/api/v1/auth/signup"), ("POST", "/api/v1/auth/token"),
          ("POST", "/api/v1/auth/password-reset"), ("POST", "/api/v1/auth/password-reset/confirm"),
          ("GET", "/api/v1/oauth/authorize"), ("POST", "/api/v1/oauth/token"), ("POST", "/api/v1/oauth/revoke"),
          ("POST", "/api/v1/oauth/introspect"),
          # what a device fetches: the brand's public countersigning key, an image through its signed, expiring link
          ("GET", "/api/v1/firmware/brand-key"), ("GET", "/api/v1/firmware/download/{token}")}

ANY_ROLE = {("GET", "/api/v1/auth/me"), ("POST", "/api/v1/auth/logout"),
            ("GET", "/api/v1/stream")}  # the caller's own devices, streamed for minutes: a walk would hang on it
REFUSED = {401, 403, 404}
# path parameters naming something a user or a partner owns: strangers of both kinds must be refused there
OWNED = {"home_id", "room_id", "user_id", "did", "model", "partner_id"}
# valid requests where validation would otherwise answer first (a 422 proves nothing about who may call)
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/devices/{did}/telemetry"): {"params": {"key": "2.1"}},
    ("POST", "/api/v1/devices/{did}/commands"): {"json": {"method": "get_properties",
                                                           "params": [{"siid": 2, "piid": 1}]}},
    ("POST", "/api/v1/products/{model}/spec:check"): {"json": {"spec": load_spec("cuco.plug.v3")}},
    ("POST", "/api/v1/products/{model}/evidence"): {
        "data": {"market": "DE", "regime": "CE-RED", "issuer": "Lab", "number": "1", "valid_until": "2030-01-01"},
        "files": {"file": ("c.pdf", b"%PDF-1.4")}},
    ("POST", "/api/v1/products/{model}/evidence/{evidence_id}/revoke"): {"json": {"reason": "forged"}},
    ("POST", "/api/v1/products/{model}/designs"): {"params": {"filename": "front.png"}, "content": PNG},
    ("POST", "/api/v1/partners/{partner_id}/signing-keys"): {"json": {"public_key": "MCowBQYDK2VwAyEA" + "A" * 44}},
}


def _world(client: TestClient, services: Services) -> dict[str, Any]:
    """An owner with a home, a room, a bound device of partner acme and a member; plus outsiders of each role."""
    services.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test",
                                  partner_id="acme", **DEFINITION)
    dev = services.devices.provision(model="acme.plug.v1", cell="eu")[0]
    owner, member, stranger = (signup(client, f"{n}@example.org") for n in ("owner", "member", "stranger"))
    home = client.post("/api/v1/homes", json={"name": "Home"}, headers=owner["headers"]).json()["home_id"]
    room = client.post(f"/api/v1/homes/{home}/rooms", json={"name": "Hall"}, headers=owner["headers"]).json()
    assert client.post(f"/api/v1/homes/{home}/devices", json={"did": dev.did, "bind_code": dev.bind_code},
                       headers=owner["headers"]).status_code == 201
    client.post(f"/api/v1/homes/{home}/members", json={"email": "member@example.org", "role": "member"},
                headers=owner["headers"])
    token = services.tokens.create
    return {
        "params": {"home_id": home, "room_id": room["room_id"], "did": dev.did, "user_id": member["user_id"],
                   "model": "acme.plug.v1", "partner_id": "acme", "listing_id": "1", "code": "DE",
                   "evidence_id": "1", "version": "1", "market": "DE"},
        "callers": {"operator": bearer(str(token(role="operator")["token"])),
                    "partner_other": bearer(str(token(role="partner", partner_id="other")["token"])),
                    "user_other": stranger["headers"]},
    }


def _routes(client: TestClient) -> list[tuple[str, str]]:
    doc = client.get("/api/v1/openapi.json").json()
    return sorted((m.upper(), p) for p, ops in doc["paths"].items() for m in ops
                  if m in ("get", "post", "put", "patch", "delete"))


def _call(client: TestClient, route: tuple[str, str], url: str, headers: dict[str, str] | None = None) -> int:
    extra = SAMPLES.get(route) or ({"json": {}} if route[0] in ("POST", "PUT", "PATCH") else {})
    return client.request(route[0], url, headers=headers or {}, **extra).status_code


def open_routes(client: TestClient, world: dict[str, Any]) -> list[str]:
    """Every route that lets a caller in who should have been refused, with what happened."""
    problems: list[str] = []
    routes = _routes(client)
    assert all(r in routes for r in PUBLIC | ANY_ROLE)
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        names = re.findall(r"{(\w+)}", path)
        url = re.sub(r"{(\w+)}", lambda m: str(world["params"].get(m.group(1), "unknown-id")), path)
        anonymous = _call(client, (method, path), url)
        if anonymous != 401:
            problems.append(f"{method} {path}: without a token → {anonymous}, expected 401")
        if (method, path) in ANY_ROLE:
            continue
        got = {who: _call(client, (method, path), url, h) for who, h in world["callers"].items()}
        refused = {who for who, status in got.items() if status in REFUSED}
        must = {"user_other", "partner_other"} if OWNED.intersection(names) else set()
        if not refused or not must <= refused:
            problems.append(f"{method} {path}: outsiders got {got}; must refuse {sorted(must) or 'someone'}")
    return problems


def test_every_route_refuses_callers_without_a_token_and_outsiders(client: TestClient, services: Services) -> None:
    world = _world(client, services)
    assert len(_routes(client)) > 20
    problems = open_routes(client, world)
    assert not problems, "routes left open:\n" + "\n".join(problems)


def test_the_walk_catches_a_route_left_open(client: TestClient, services: Services) -> None:
    world = _world(client, services)
    app = create_app(services)

    @app.get("/api/v1/leak/{did}")
    def leak(did: str) -> dict[str, str]:
        return {"did": did}

    @app.get("/api/v1/leak-homes/{home_id}")
    def any_user(home_id: str, principal: Principal = Depends(require(Role.USER))) -> dict[str, str]:
        return {"home_id": home_id}  # checks the role but not whose home it is

    with TestClient(app) as c:
        problems = open_routes(c, world)
    assert any(p.startswith("GET /api/v1/leak/{did}: without a token") for p in problems)
    assert any(p.startswith("GET /api/v1/leak-homes/{home_id}: outsiders") for p in problems)
    assert {p.split(":")[0] for p in problems} == {"GET /api/v1/leak/{did}", "GET /api/v1/leak-homes/{home_id}"}


def test_public_routes_are_the_listed_ones(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    marked = {(m.upper(), p) for p, ops in doc["paths"].items() for m, op in ops.items()
              if isinstance(op, dict) and op.get("security") == []}
    assert marked <= PUBLIC
