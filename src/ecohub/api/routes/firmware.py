"""REST: partners' firmware signing keys, image uploads (raw body), the brand's approval, device downloads."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from ecohub.api.deps import OperatorDep, RowId, ServicesDep, require
from ecohub.auth import Principal, Role

router = APIRouter(tags=["firmware"])
OperatorOrPartner = Depends(require(Role.OPERATOR, Role.PARTNER))
CHUNK = 1024 * 1024


class SigningKeyIn(BaseModel):
    """A partner's Ed25519 public key: PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""

    public_key: str = Field(examples=["MCowBQYDK2VwAyEA..."], max_length=4096)


@router.post("/partners/{partner_id}/signing-keys", status_code=201)
def add_signing_key(partner_id: str, body: SigningKeyIn, services: ServicesDep,
                    principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Register a key the partner signs its firmware images with (a partner: only its own)."""
    return services.firmware.add_key(partner_id, body.public_key, caller=principal)


@router.get("/partners/{partner_id}/signing-keys")
def list_signing_keys(partner_id: str, services: ServicesDep,
                      principal: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """The partner's registered firmware signing keys."""
    return services.firmware.keys(partner_id, caller=principal)


@router.get("/firmware/brand-key")
def brand_key(services: ServicesDep) -> dict[str, str]:
    """The brand's firmware countersigning public key (firmware pins it; public)."""
    return services.firmware.brand_public()


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    f.seek(0)
    while chunk := f.read(CHUNK):
        yield chunk


@router.post("/firmware", status_code=201)
async def upload(request: Request, services: ServicesDep,
                 model: str = Query(..., max_length=64), version: str = Query(..., max_length=32),
                 signature: str = Query(..., max_length=100, description="base64 Ed25519 signature of the partner "
                                        "over `ecohub-firmware-v1\\n{model}\\n{version}\\n{sha256}\\n{size}`"),
                 key_id: str | None = Query(None, max_length=16),
                 principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Upload an image as the raw request body (application/octet-stream); refused unless the signature verifies."""
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as f:
        async for chunk in request.stream():
            f.write(chunk)
        return await asyncio.to_thread(services.firmware.upload, _chunks(f), model=model, version=version,
                                       signature=signature, key=key_id, caller=principal, actor=principal.actor)


@router.get("/firmware")
def list_images(services: ServicesDep, model: str | None = Query(None, max_length=64),
                principal: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """Firmware images, newest first (a partner: its own)."""
    return services.firmware.list(model=model, caller=principal)


@router.get("/firmware/{image_id}")
def get_image(image_id: RowId, services: ServicesDep, principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """One image: hash, size, status and its signatures."""
    return services.firmware.get(image_id, caller=principal)


@router.post("/firmware/{image_id}/approve")
def approve(image_id: RowId, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """The brand countersigns the image (operators): campaigns may then offer it."""
    return services.firmware.approve(image_id, actor=principal.actor)


@router.get("/firmware/download/{token}", response_class=FileResponse)
async def download(token: str, request: Request, services: ServicesDep) -> Response:
    """A device fetches its image with the per-device URL of its offer; `Range: bytes=N-` resumes a download."""
    sha, size = services.campaigns.download(token)
    headers = {"Cache-Control": "no-store", "Accept-Ranges": "bytes"}
    store = services.firmware.store
    path = store.local_path(sha)
    if path is not None:
        return FileResponse(path, media_type="application/octet-stream", filename=f"{sha}.bin",
                            headers={"Cache-Control": "no-store"})
    # an S3-compatible store: the same range is asked of the bucket and streamed on
    wanted = _byte_range(request.headers.get("range"), size)
    if wanted is None:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end, partial = wanted
    chunks = await asyncio.to_thread(store.read, sha, start, end)
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Disposition"] = f'attachment; filename="{sha}.bin"'
    if partial:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(chunks, status_code=206 if partial else 200, media_type="application/octet-stream",
                             headers=headers)


def _byte_range(header: str | None, size: int) -> tuple[int, int, bool] | None:
    """(start, end inclusive, partial) of one `bytes=` range of RFC 9110 (a header it cannot read, or several
    ranges: the whole image); None when the range is unsatisfiable (→ 416)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return 0, size - 1, False
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:  # the last N bytes
            n = int(last)
            return (max(0, size - n), size - 1, True) if n > 0 else None
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return 0, size - 1, False
    if start >= size or end < start:
        return None
    return start, end, True
