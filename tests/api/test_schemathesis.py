"""Generated requests against every operation of the OpenAPI document, as operator, partner and user: no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.helpers import DEFINITION

# 162 generated requests, 80 s: in the -m slow run (the default CI run stays under its 30 minutes)
pytestmark = pytest.mark.slow


TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The hub's OpenAPI document served in-process, on a real SQLite data dir with a product and a user."""
    services: Services = bootstrap(Settings(data_dir=tmp_path_factory.mktemp("schemathesis") / "data"))
    services.products.import_spec(load_spec("cuco.plug.v3"), model="cuco.plug.v3", actor="test", **DEFINITION)
    services.ecosystem.partners.add(name="acme", partner_id="acme", country="DE", founded_on="2015-01-01",
                                    actor="test")
    TOKENS["operator"] = str(services.tokens.create(role="operator")["token"])
    TOKENS["partner"] = str(services.tokens.create(role="partner", partner_id="acme")["token"])
    services.home.accounts.signup(email="fuzz@example.org", password="mauve tractor sings", country="DE")
    TOKENS["user"] = str(services.home.accounts.signin(email="fuzz@example.org",
                                                       password="mauve tractor sings")["access_token"])
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(services))
    services.close()


# signing out revokes the caller's own token: the generated cases would end the session the others run under;
# the SSE stream answers for minutes (tests/apps/test_push.py covers it)
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r"logout|/api/v1/stream$")


@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_a_server_error(case: schemathesis.Case) -> None:
    """Huge integers, wrong types, odd strings: a 4xx with a reason, never a 500 (schemathesis's generated cases),
    whoever calls: the operator, a partner or a user."""
    for role in ("operator", "partner", "user"):
        response = case.call(headers={"Authorization": f"Bearer {TOKENS[role]}"})
        assert response.status_code < 500, (f"as {role}: {case.method} {case.formatted_path}: "
                                            f"{response.status_code} {response.text[:300]}")


@pytest.mark.parametrize("path", [
    "/api/v1/listings?limit=10&offset=-19955282467335878062939045888",
    "/api/v1/listings/710541324698643896700239872",
    "/api/v1/partners?limit=420438105495063527552496697344",
    "/api/v1/products?offset=43562536767208783085568",
    "/api/v1/devices/eu-0000000000000001/events?since=99999999999999999999999",
])
def test_the_integers_schemathesis_found_are_refused_with_a_reason(api_schema: Any, path: str) -> None:
    """The four requests that answered 500 (SQLite's OverflowError) now answer 422 naming the parameter."""
    from fastapi.testclient import TestClient

    with TestClient(api_schema.app) as client:
        r = client.get(path, headers={"Authorization": f"Bearer {TOKENS['operator']}"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
    name = path.rsplit("/", 1)[-1].split("?")[-1].split("=")[-2].split("&")[-1] if "?" in path else "listing_id"
    assert name in r.json()["error"]["message"]
