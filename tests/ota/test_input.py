"""Bad input to firmware and campaigns gets a clear 4xx with the reason; downloads need a valid per-device token."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from ecohub.ota.domain import sign_token
from tests.ota.conftest import MODEL, Vendor, sign


@pytest.fixture
def vendor(services: Services, vendor_for: Callable[[], Vendor]) -> Vendor:
    return vendor_for()


@pytest.fixture
def partner_token(services: Services) -> str:
    return str(services.tokens.create(role="partner", partner_id="cuco", label="tests")["token"])


def _upload(client: TestClient, token: str, data: bytes, *, version: str, signature: str,
            model: str = MODEL) -> tuple[int, dict]:
    r = client.post("/api/v1/firmware", params={"model": model, "version": version, "signature": signature},
                    content=data, headers={"Authorization": f"Bearer {token}",
                                           "Content-Type": "application/octet-stream"})
    return r.status_code, r.json()


def test_partner_uploads_signed_image_and_bad_signature_is_refused(client: TestClient, vendor: Vendor,
                                                                   partner_token: str) -> None:
    data = b"firmware-2.0.0" * 1000
    status, body = _upload(client, partner_token, data, version="2.0.0",
                           signature=sign(vendor.key, MODEL, "2.0.1", data))  # signed for another version
    assert status == 422 and body["error"]["code"] == "bad_signature", body
    assert "does not verify" in body["error"]["message"]
    status, body = _upload(client, partner_token, data, version="2.0.0", signature=sign(vendor.key, MODEL, "2.0.0",
                                                                                         data))
    assert status == 201, body
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert body["status"] == "uploaded" and [s["by"] for s in body["signatures"]] == ["partner"]
    assert (vendor.services.firmware.path_of(body["sha256"])).read_bytes() == data
    status, again = _upload(client, partner_token, data, version="2.0.0",
                            signature=sign(vendor.key, MODEL, "2.0.0", data))
    assert status == 409 and again["error"]["code"] == "version_exists"


def test_partner_cannot_upload_for_a_product_it_does_not_own(client: TestClient, services: Services,
                                                             vendor: Vendor) -> None:
    other = str(services.tokens.create(role="partner", partner_id="someone-else", label="x")["token"])
    data = b"x" * 100
    status, body = _upload(client, other, data, version="2.0.0", signature=sign(vendor.key, MODEL, "2.0.0", data))
    assert status == 403 and body["error"]["code"] == "not_your_partner", body


def test_only_operators_approve(client: TestClient, vendor: Vendor, partner_token: str,
                                operator_token: str) -> None:
    img, _ = vendor.image("2.0.0", approve=False)
    r = client.post(f"/api/v1/firmware/{img['image_id']}/approve",
                    headers={"Authorization": f"Bearer {partner_token}"})
    assert r.status_code == 403
    r = client.post(f"/api/v1/firmware/{img['image_id']}/approve",
                    headers={"Authorization": f"Bearer {operator_token}"})
    assert r.status_code == 200 and [s["by"] for s in r.json()["signatures"]] == ["partner", "brand"]


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"stages": [10, 5, 100]}, "invalid_stages", "strictly increasing"),
    ({"stages": [10, 50]}, "invalid_stages", "must be 100"),
    ({"stages": [0, 100]}, "invalid_stages", "1-100"),
    ({"threshold": 101}, "invalid_threshold", "0-100"),
    ({"threshold": -1}, "invalid_threshold", "0-100"),
    ({"version": "2.x"}, "invalid_version", "dot-separated"),
    ({"max_in_flight": -1}, "invalid_rollout_rate", "0-1,000,000"),
    ({"max_per_minute": 10**12}, "invalid_rollout_rate", "0-1,000,000"),
    ({"max_per_minute": True}, "invalid_input", "max_per_minute"),
    ({"max_in_flight": "500"}, "invalid_input", "max_in_flight"),
])
def test_campaign_input_is_checked(client: TestClient, vendor: Vendor, operator_token: str, body: dict, code: str,
                                   words: str) -> None:
    vendor.provision(1)
    vendor.image("2.0.0")
    r = client.post("/api/v1/ota/campaigns", json={"model": MODEL, "version": "2.0.0", **body},
                    headers={"Authorization": f"Bearer {operator_token}"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code and words in r.json()["error"]["message"]


def test_campaign_over_unapproved_image_and_not_newer_version(client: TestClient, vendor: Vendor,
                                                               operator_token: str) -> None:
    auth = {"Authorization": f"Bearer {operator_token}"}
    dev = vendor.provision(1)[0]
    vendor.image("2.0.0", approve=False)
    r = client.post("/api/v1/ota/campaigns", json={"model": MODEL, "version": "2.0.0"}, headers=auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "image_not_approved", r.text
    vendor.image("1.5.0")
    with vendor.services.dbs.cell_session(vendor.services.devices.cell_of(dev["did"])) as s:
        vendor.services.twin.apply_online(s, {dev["did"]: (True, 1, 1, "1.5.0")})  # as its online state said
    r = client.post("/api/v1/ota/campaigns", json={"model": MODEL, "version": "1.5.0"}, headers=auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_not_newer"
    assert "rollback" in r.json()["error"]["message"]
    r = client.post("/api/v1/ota/campaigns", json={"model": MODEL, "version": "3.0.0"}, headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_image"


def test_download_resumes_with_ranges_and_needs_a_valid_token(client: TestClient, services: Services,
                                                              vendor: Vendor) -> None:
    img, data = vendor.image("2.0.0")
    key = services.campaigns.token_key
    token = sign_token(key, "eu-0000000000000001", img["image_id"], int(time.time()) + 60)
    r = client.get(f"/api/v1/firmware/download/{token}")
    assert r.status_code == 200 and r.content == data
    r = client.get(f"/api/v1/firmware/download/{token}", headers={"Range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    assert r.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    expired = sign_token(key, "eu-0000000000000001", img["image_id"], int(time.time()) - 1)
    r = client.get(f"/api/v1/firmware/download/{expired}")
    assert r.status_code == 422 and r.json()["error"]["code"] == "token_expired"
    forged = token.replace("eu-0000000000000001", "eu-0000000000000002")
    r = client.get(f"/api/v1/firmware/download/{forged}")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_token"
