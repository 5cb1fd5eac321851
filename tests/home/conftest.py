"""Fixtures of the home tests: an in-process API client and helpers to sign users up and in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import Services

PASSWORD = "correct horse battery"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    """The API app in-process (no broker: commands answer 503 after the access checks)."""
    with TestClient(create_app(services)) as c:
        yield c


def signup(client: Any, email: str, country: str = "DE") -> dict[str, Any]:
    """Sign a user up and in; → {user_id, cell, token, headers}."""
    r = client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "country": country})
    assert r.status_code == 201, r.text
    t = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    return {**r.json(), "token": token, "headers": {"Authorization": f"Bearer {token}"}}


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}
