"""The REST conventions clients rely on: operation ids and one described tag per operation, the error body on every
documented 4xx, DELETE → 204 and PATCH → 200, and cursor paging that walks every list past `limit` by `Link`."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from ecohub.protocol import Topic
from tests.connect.test_ingest import _device
from tests.helpers import eventually, walk_pages

ERROR = {"$ref": "#/components/schemas/Error"}
# DELETEs that answer more than "gone": unbinding returns the device's new secret and bind code (shown once), and an
# erasure is a job with a deadline (202 {request_id, due})
DELETE_EXCEPTIONS = {"unbind_device": "200", "erase": "202"}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_every_operation_has_an_id_one_described_tag_and_documented_errors(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    ops = _operations(doc)
    assert len(ops) > 80
    ids = [op["operationId"] for _, _, op in ops]
    assert len(set(ids)) == len(ids)
    assert [i for i in ids if not re.fullmatch(r"[a-z][a-z0-9_]*", i)] == []
    assert doc["paths"]["/api/v1/devices/{did}/twin"]["get"]["operationId"] == "get_twin"
    described = {t["name"]: t["description"] for t in doc["tags"]}
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        assert len(op["tags"]) == 1 and described.get(op["tags"][0]), where
        errors = {code: r for code, r in op["responses"].items() if code.startswith("4")}
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in errors, where
        if op.get("security", doc.get("security")):
            assert {"401", "403"} <= set(errors), where
        for code, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ERROR, (where, code)
    assert "HTTPValidationError" not in str(doc)  # FastAPI's 422 shape, which the API never sends
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["code", "message"]


def test_delete_answers_204_and_patch_the_resource(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    for path, method, op in _operations(doc):
        success = sorted(c for c in op["responses"] if c.startswith("2"))
        if method == "delete":
            assert success == [DELETE_EXCEPTIONS.get(op["operationId"], "204")], (path, success)
        if method == "patch":
            assert success == ["200"], (path, success)


def _walk(client: TestClient | httpx.Client, url: str, headers: dict[str, str]) -> tuple[list[Any], int]:
    """Every item of a list, following `Link: <…>; rel="next"` from page to page."""
    return walk_pages(client, url, headers)


def test_devices_page_past_the_limit_by_cursor(client: TestClient, services: Services, plug_model: str,
                                               operator_token: str) -> None:
    made = [d.did for d in services.devices.provision(model=plug_model, count=5, cell="eu")]
    made += [d.did for d in services.devices.provision(model=plug_model, count=2, cell="us")]
    auth = {"Authorization": f"Bearer {operator_token}"}
    items, pages = _walk(client, "/api/v1/devices?limit=2", auth)
    assert pages == 4 and sorted(d["did"] for d in items) == sorted(made) and len(items) == len(made)
    created = [(d["created_at"], d["did"]) for d in items]
    assert created == sorted(created)  # oldest first across cells
    only_us, _ = _walk(client, "/api/v1/devices?limit=1&cell=us", auth)  # filters ride along in the link
    assert [d["cell"] for d in only_us] == ["us", "us"]
    last = client.get("/api/v1/devices?limit=7", headers=auth)
    assert len(last.json()) == 7 and "link" not in last.headers  # no next page: no link
    bad = client.get("/api/v1/devices?cursor=bm90LWEtY3Vyc29y", headers=auth)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")


def test_offset_lists_keep_offset_and_gain_a_cursor(client: TestClient, services: Services,
                                                    operator_token: str) -> None:
    for i in range(5):
        services.ecosystem.partners.add(name=f"Partner {i}", partner_id=f"p{i}", country="DE",
                                        founded_on="2015-01-01", actor="test")
    auth = {"Authorization": f"Bearer {operator_token}"}
    items, pages = _walk(client, "/api/v1/partners?limit=2", auth)
    assert [p["id"] for p in items] == [f"p{i}" for i in range(5)] and pages == 3
    assert [p["id"] for p in client.get("/api/v1/partners?limit=2&offset=3", headers=auth).json()] == ["p3", "p4"]


async def test_dead_letters_page_past_the_limit_by_cursor(hub: Services, plug_model: str,
                                                          api: httpx.AsyncClient) -> None:
    dev = await _device(hub, plug_model)
    try:
        for i in range(7):
            dev.publish_raw(Topic.up(dev.did), b'{"id": %d, "method": "no_such_method"}' % (i + 1))
        await eventually(lambda: len(hub.dead_letters.list(did=dev.did)) >= 7)
    finally:
        await dev.disconnect()
    items: list[Any] = []
    url: str | None = f"/api/v1/dead-letters?did={dev.did}&limit=3"
    pages = 0
    while url is not None:
        r = await api.get(url)
        assert r.status_code == 200, r.text
        items += r.json()
        pages += 1
        link = r.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert pages == 3 and len(items) == 7 and len({(d["cell"], d["id"]) for d in items}) == 7
    received = [d["received_ms"] for d in items]
    assert received == sorted(received, reverse=True)  # newest first, page after page
