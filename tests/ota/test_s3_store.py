"""Images in an S3-compatible bucket (a real SeaweedFS S3 gateway on free ports): the upload lands in the bucket, not
the data dir; devices still download through their per-device URL on the hub, which asks the bucket for the same
range (206 + Content-Range, a suffix range, 416 past the end); a campaign completes to real SDK devices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.ota.domain import sign_token
from ecohub.settings import OtaSettings, Settings
from tests.helpers import eventually, migrated
from tests.ota.conftest import Vendor
from tests.ota.s3server import S3Server, seaweed_s3


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    with seaweed_s3(tmp_path / "s3") as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, s3: S3Server) -> Settings:
    return Settings(data_dir=migrated(tmp_path), ota=OtaSettings(
        tick_s=0.2, offer_retry_s=1.0, s3_bucket=s3.bucket, s3_endpoint_url=s3.endpoint, s3_region=s3.region,
        s3_access_key=s3.access_key, s3_secret_key=s3.secret_key, s3_prefix="images/"))


async def test_images_in_a_bucket_are_served_by_range_through_the_device_url(
        hub: Services, vendor: Vendor, s3: S3Server, api: httpx.AsyncClient) -> None:
    img, data = vendor.image("2.0.0", size=300_000)
    sha = img["sha256"]
    obj = s3.client().head_object(Bucket=s3.bucket, Key=f"images/{sha[:2]}/{sha}")
    assert obj["ContentLength"] == len(data)
    assert not (hub.settings.data_dir / "firmware" / sha[:2]).exists()  # nothing kept on the hub's disk

    creds = vendor.provision(1)[0]
    url = f"/api/v1/firmware/download/{sign_token(hub.campaigns.token_key, creds['did'], img['image_id'], 2**31)}"
    r = await api.get(url, headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    r = await api.get(url, headers={"Range": "bytes=299990-"})  # a resumed download: the rest
    assert r.status_code == 206 and r.content == data[299990:]
    r = await api.get(url, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = await api.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    r = await api.get(url)
    assert r.status_code == 200 and r.content == data and r.headers["accept-ranges"] == "bytes"
    assert (await api.get(url[:-4] + "AAAA")).status_code in (401, 403, 422)  # a tampered token reads nothing

    devs = [vendor.device(creds), *await vendor.fleet(1)]
    await devs[0].connect()
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    body = await eventually(lambda: _completed(api, cid), timeout=60)
    assert body["counts"] == {"done": 2}
    for d in devs:
        assert d.firmware_version == "2.0.0" and d.ota.ranges and d.ota.ranges[0].startswith("bytes=0-")


async def _completed(api: httpx.AsyncClient, cid: int) -> dict | None:
    body = (await api.get(f"/api/v1/ota/campaigns/{cid}")).json()
    return body if body["status"] == "completed" else None


def test_a_store_that_refuses_the_credentials_refuses_the_upload(services: Services, s3: S3Server) -> None:
    from ecohub.errors import Unavailable
    from ecohub.ota.store import S3Store

    store = S3Store(bucket=s3.bucket, scratch=services.settings.data_dir, client=s3.client(secret_key="wrong"))
    f = services.settings.data_dir / "x.bin"
    f.write_bytes(b"abc")
    with pytest.raises(Unavailable, match="refused the upload"):
        store.put("ab" * 32, f)
    assert not f.exists()
