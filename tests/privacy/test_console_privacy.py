"""The console's privacy page calls the privacy services: current consents, export and erasure with the password."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi.testclient import TestClient

from ecohub.api.console.common import COOKIE
from ecohub.bootstrap import Services
from tests.home.conftest import PASSWORD


def test_privacy_page_shows_consents_and_exports_and_erases(client: TestClient, services: Services,
                                                             world: dict[str, Any]) -> None:
    ann = world["ann"]
    client.post("/api/v1/privacy/consents", json={"purpose": "device_diagnostics_to_maker", "given": True,
                                                  "text_version": "3"}, headers=ann["headers"])
    client.cookies.set(COOKIE, ann["token"], path="/console")
    page = client.get("/console/privacy")
    assert page.status_code == 200
    assert "given on" in page.text and "(text 3)" in page.text  # the decision, and the text version in the ledger
    assert 'data-purpose="product_improvement_analytics"' in page.text and "never asked" in page.text

    refused = client.post("/console/privacy/export", data={"password": "wrong password here"})
    assert "Export refused" in refused.text
    r = client.post("/console/privacy/export", data={"password": PASSWORD})
    assert r.headers["content-type"] == "application/zip"
    assert "telemetry.json" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()

    assert "Type ERASE" in client.post("/console/privacy/erase", data={"confirm": "no", "password": PASSWORD}).text
    done = client.post("/console/privacy/erase", data={"confirm": "ERASE", "password": PASSWORD})
    assert "Erasure request" in done.text and services.telemetry.count("eu", world["did"]) == 0
