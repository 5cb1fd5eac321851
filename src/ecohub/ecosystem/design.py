"""Industrial-design records: versioned design files (renders, drawings, CAD) stored by content hash, uploaded by the
product's partner, approved or rejected by the brand with the decision audited."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role, check_partner
from ecohub.ecosystem.definition import DesignStatus
from ecohub.ecosystem.models import DesignVersion, Product
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from ecohub.store import Databases, aware, utcnow

# Records one brand action in the hash-chained audit log (wired by the composition root to privacy's AuditLog).
Audit = Callable[..., object]

MAX_DESIGN_BYTES = 8 * 1024 * 1024  # REST uploads are further bounded by the API's request body limit
KINDS = ("render", "drawing", "cad")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def sniff(data: bytes) -> tuple[str, str] | None:
    """(media type, kind) of a design file from its first bytes, or None for anything not on the list.

    Images that can carry script (SVG, HTML) are not accepted: the console serves these files back."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "render"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "render"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "render"
    if data.startswith(b"%PDF-"):
        return "application/pdf", "drawing"
    if data.startswith(b"ISO-10303-21;"):
        return "model/step", "cad"
    if data.startswith(b"glTF"):
        return "model/gltf-binary", "cad"
    if data.startswith(b"solid ") and b"facet" in data[:4096]:
        return "model/stl", "cad"
    if len(data) >= 84 and len(data) == 84 + 50 * int.from_bytes(data[80:84], "little"):
        return "model/stl", "cad"  # binary STL: an 80-byte header, a triangle count, 50 bytes per triangle
    return None


def design_dict(d: DesignVersion) -> dict[str, Any]:
    """A design version as services return it."""
    return {"model": d.model, "version": d.version, "kind": d.kind, "filename": d.filename,
            "media_type": d.media_type, "size": d.size, "sha256": d.sha256, "note": d.note, "status": d.status,
            "uploaded_by": d.uploaded_by, "uploaded_at": aware(d.uploaded_at).isoformat(),
            "decided_by": d.decided_by, "decided_at": aware(d.decided_at).isoformat() if d.decided_at else None,
            "decision_note": d.decision_note}


def design_ref(version: int, sha256: str) -> str:
    """What the products' read-only `design_ref` field says: the current design version and its content hash."""
    return f"v{version}:sha256:{sha256[:16]}"


class DesignService:
    """Design versions of products: files under `{data_dir}/designs/` by sha256, rows in the global plane."""

    def __init__(self, dbs: Databases, store_dir: Path, *, audit: Audit | None = None,
                 max_bytes: int = MAX_DESIGN_BYTES) -> None:
        self.dbs = dbs
        self.store_dir = store_dir
        self.audit = audit
        self.max_bytes = max_bytes

    def _product(self, s: Session, model: str, caller: Principal | None) -> Product:
        product = s.get(Product, model)
        if product is None:
            if caller is not None and caller.role == Role.PARTNER:
                check_partner(caller, None)  # an unknown product is not the partner's either
            raise NotFound(f"no product with model {model!r}", code=ErrorCode.UNKNOWN_MODEL)
        check_partner(caller, product.partner_id)
        return product

    def path_of(self, sha256: str) -> Path:
        """Where the file with this content hash is stored."""
        return self.store_dir / sha256[:2] / sha256

    def store(self, data: bytes) -> str:
        """Keep a file under its sha256 (once, however often it is uploaded); → the hash."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        if not path.exists():  # content-addressed: the same file uploaded twice is stored once
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return digest

    def upload(self, model: str, data: bytes, *, filename: str, actor: str, kind: str | None = None,
               note: str = "", caller: Principal | None = None) -> dict[str, Any]:
        """Add a new design version (pending the brand's approval); the product's partner or the brand uploads."""
        if caller is not None and caller.role not in (Role.OPERATOR, Role.PARTNER):
            raise Forbidden("design files come from the product's partner or the brand", code=ErrorCode.WRONG_ROLE)
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"a design file may be at most {self.max_bytes} bytes, got {len(data)}")
        if not data:
            raise InvalidInput("the design file is empty", code=ErrorCode.INVALID_DESIGN)
        sniffed = sniff(data)
        if sniffed is None:
            raise InvalidInput("not a design file ecohub accepts: PNG, JPEG or WebP renders, PDF drawings, STEP, STL "
                               "or glTF (binary) CAD", code=ErrorCode.INVALID_DESIGN)
        media_type, detected = sniffed
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", code=ErrorCode.INVALID_DESIGN)
        name = _SAFE_NAME.sub("_", Path(filename or "design").name)[:200] or "design"
        with self.dbs.global_session() as s:
            product = self._product(s, model, caller)
            digest = self.store(data)
            version = (s.scalar(select(func.max(DesignVersion.version)).where(DesignVersion.model == model)) or 0) + 1
            row = DesignVersion(model=model, version=version, kind=kind or detected, filename=name,
                                media_type=media_type, size=len(data), sha256=digest, note=note[:2000],
                                status=DesignStatus.PENDING, uploaded_by=actor, decision_note="")
            s.add(row)
            product.design_ref = design_ref(version, digest)
            s.flush()
            return design_dict(row)

    def list(self, model: str, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Every design version of a product, newest first, with its review status."""
        with self.dbs.global_session() as s:
            self._product(s, model, caller)
            rows = s.scalars(select(DesignVersion).where(DesignVersion.model == model)
                             .order_by(DesignVersion.version.desc()))
            return [design_dict(r) for r in rows]

    def file(self, model: str, version: int, *, caller: Principal | None = None) -> tuple[dict[str, Any], bytes]:
        """One design version and its file's bytes."""
        with self.dbs.global_session() as s:
            self._product(s, model, caller)
            row = self._version(s, model, version)
            out = design_dict(row)
        return out, self.path_of(out["sha256"]).read_bytes()

    @staticmethod
    def _version(s: Session, model: str, version: int | None) -> DesignVersion:
        q = select(DesignVersion).where(DesignVersion.model == model)
        q = q.where(DesignVersion.version == version) if version is not None else q.order_by(
            DesignVersion.version.desc()).limit(1)
        row = s.scalars(q).first()
        if row is None:
            what = f"version {version}" if version is not None else "design version"
            raise NotFound(f"{model} has no {what}", code=ErrorCode.UNKNOWN_DESIGN)
        return row

    def decide(self, model: str, *, approve: bool, actor: str, version: int | None = None, note: str = "",
               caller: Principal | None = None) -> dict[str, Any]:
        """The brand approves or rejects a pending design version (the current one unless named); audited."""
        if caller is not None and caller.role != Role.OPERATOR:
            raise Forbidden("only the brand (an operator) approves industrial designs", code=ErrorCode.WRONG_ROLE)
        status = DesignStatus.APPROVED if approve else DesignStatus.REJECTED
        with self.dbs.global_session() as s:
            self._product(s, model, caller)
            row = self._version(s, model, version)
            if row.status != DesignStatus.PENDING:
                raise Conflict(f"design v{row.version} of {model} was already {row.status}",
                               code=ErrorCode.DESIGN_DECIDED)
            row.status, row.decided_by, row.decided_at, row.decision_note = status, actor, utcnow(), note[:2000]
            s.flush()
            out = design_dict(row)
            if self.audit is not None:  # recorded before the decision commits: no unaudited approval
                self.audit(actor=actor, action=f"design.{status}", subject=model,
                           detail={"version": out["version"], "sha256": out["sha256"], "note": note[:200]})
        return out
