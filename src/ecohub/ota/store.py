"""Where firmware images' bytes live, by content hash: a directory under the data dir, or an S3-compatible bucket.

The hub always serves the bytes itself, through the per-device download URL (range requests included): with S3 it
asks the bucket for the same range and streams it on, so devices never need the bucket's address or credentials.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ecohub.errors import ErrorCode, NotFound, Unavailable

READ_CHUNK = 256 * 1024


class ImageStore(Protocol):
    """Content-addressed image bytes."""

    scratch: Path  # where an upload is spooled while its hash and signature are checked

    def put(self, sha256: str, path: Path) -> None:
        """Keep the verified file at `path` (a file in `scratch`, consumed) as the image `sha256`."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """A file the web server may send as is (None: read it with `read`)."""
        ...

    def read(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes `start`..`end` (inclusive) of the image."""
        ...


class DirStore:
    """`DATA_DIR/firmware/ab/abcdef…`: the default."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch = root

    def path_of(self, sha256: str) -> Path:
        """Where an image's bytes live."""
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, path: Path) -> None:
        target = self.path_of(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)

    def local_path(self, sha256: str) -> Path | None:
        return self.path_of(sha256)

    def read(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        with self.path_of(sha256).open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := f.read(min(READ_CHUNK, left))):
                left -= len(chunk)
                yield chunk


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph RGW …) through boto3; objects `{prefix}ab/abcdef…`."""

    def __init__(self, *, bucket: str, scratch: Path, endpoint_url: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, prefix: str = "firmware/",
                 client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.scratch = scratch
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as err:
                raise Unavailable("the S3 image store needs boto3: pip install 'ecohub[s3]'",
                                  code=ErrorCode.IMAGE_STORE_UNAVAILABLE) from err
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key,
                                  aws_secret_access_key=secret_key,
                                  config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}))
        self.client = client

    def key_of(self, sha256: str) -> str:
        """The object key of an image."""
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def put(self, sha256: str, path: Path) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self.key_of(sha256),
                                    ExtraArgs={"ContentType": "application/octet-stream"})
        except Exception as err:
            raise Unavailable(f"the image store (bucket {self.bucket}) refused the upload: {err}",
                              code=ErrorCode.IMAGE_STORE_UNAVAILABLE) from err
        finally:
            path.unlink(missing_ok=True)

    def local_path(self, sha256: str) -> Path | None:
        return None

    def read(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        """Asks the bucket for the range at once (a missing object or a refusal is raised here, before a response
        starts); the returned iterator streams the body."""
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key_of(sha256), Range=f"bytes={start}-{end}")
        except Exception as err:
            if getattr(err, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"image {sha256} is not in bucket {self.bucket}", code=ErrorCode.UNKNOWN_IMAGE) from err
            raise Unavailable(f"the image store (bucket {self.bucket}) cannot be read: {err}",
                              code=ErrorCode.IMAGE_STORE_UNAVAILABLE) from err
        return _chunks(obj["Body"])


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()
