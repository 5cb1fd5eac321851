"""Helpers of the home tests (and others): sign users up and in, in-process or against a running hub."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "correct horse battery"


def signup(client: Any, email: str, country: str = "DE") -> dict[str, Any]:
    """Sign a user up and in; → {user_id, cell, token, headers}."""
    r = client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "country": country})
    assert r.status_code == 201, r.text
    t = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    return {**r.json(), "token": token, "headers": {"Authorization": f"Bearer {token}"}}


async def asignup(http: httpx.AsyncClient, email: str, country: str = "IT") -> dict[str, Any]:
    """`signup` against a running hub's HTTP API."""
    r = await http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "country": country})
    assert r.status_code == 201, r.text
    t = await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    return {**r.json(), "token": token, "headers": {"Authorization": f"Bearer {token}"}}


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}
