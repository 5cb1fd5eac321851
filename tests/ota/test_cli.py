"""`ecohub firmware` and `ecohub ota` as an operator and a partner run them, next to a running hub."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from ecohub.bootstrap import Services
from ecohub.sdk.ota import load_trust
from tests.cli.test_cli import run
from tests.helpers import eventually
from tests.ota.conftest import MODEL, PARTNER, Vendor


async def test_sign_upload_approve_campaign_and_status(hub: Services, vendor: Vendor, tmp_path: Path) -> None:
    data = hub.settings.data_dir
    devs = await vendor.fleet(2)
    key = tmp_path / "partner.pem"
    made = json.loads((await asyncio.to_thread(run, "firmware", "key", "new", "--out", str(key), "--json",
                                               data_dir=data)).stdout)
    await asyncio.to_thread(run, "firmware", "key", "add", "--partner", PARTNER, made["public_key"], data_dir=data)
    image = tmp_path / "fw-2.0.0.bin"
    image.write_bytes(os.urandom(50_000))
    # firmware pins the key the image is signed with: give the devices the new partner key
    for d in devs:
        d.ota.trust.update(load_trust({"partner": made["public_key"]}))
    up = json.loads((await asyncio.to_thread(run, "firmware", "upload", str(image), "--model", MODEL, "--version",
                                             "2.0.0", "--signing-key", str(key), "--json", data_dir=data)).stdout)
    assert up["status"] == "uploaded" and up["size"] == 50_000
    refused = await asyncio.to_thread(run, "ota", "campaign", "create", "--model", MODEL, "--version", "2.0.0",
                                      data_dir=data, check=False)
    assert refused.returncode != 0 and "not approved" in refused.stderr
    await asyncio.to_thread(run, "firmware", "approve", str(up["image_id"]), data_dir=data)
    bad = await asyncio.to_thread(run, "ota", "campaign", "create", "--model", MODEL, "--version", "2.0.0",
                                  "--stages", "10,5,100", data_dir=data, check=False)
    assert bad.returncode == 7 and "strictly increasing" in bad.stderr
    made_c = json.loads((await asyncio.to_thread(run, "ota", "campaign", "create", "--model", MODEL, "--version",
                                                 "2.0.0", "--stages", "50,100", "--max-in-flight", "3",
                                                 "--max-per-minute", "600", "--json", data_dir=data)).stdout)
    cid = made_c["campaign_id"]
    assert made_c["max_in_flight"] == 3 and made_c["max_per_minute"] == 600
    await eventually(lambda: all(d.firmware_version == "2.0.0" for d in devs), timeout=30)
    await eventually(lambda: hub.campaigns.get(cid)["status"] == "completed", timeout=30)
    out = (await asyncio.to_thread(run, "ota", "status", str(cid), data_dir=data)).stdout
    assert f"campaign {cid}" in out and "completed" in out and "stage 2 (100%)" in out
    assert "at most 3 at once, 600/min" in out
