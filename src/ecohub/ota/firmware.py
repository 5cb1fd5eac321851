"""Firmware images: partners' signing keys, uploads verified against them, the brand's countersignature, storage."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ecohub.auth import Principal, Role, check_partner
from ecohub.bus import EventBus
from ecohub.certify.keys import key_id, load_public, raw_public
from ecohub.ecosystem.service import ProductService
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.ota.domain import parse_version
from ecohub.ota.events import FirmwareApproved
from ecohub.ota.models import FirmwareImage, SigningKey
from ecohub.ota.store import DirStore, ImageStore
from ecohub.protocol.messages import firmware_statement
from ecohub.store import Databases
from ecohub.store.db import utcnow

BRAND_KEY_FILE = "firmware-brand-ed25519.pem"
MAX_IMAGE_BYTES = 64 * 1024 * 1024


def brand_firmware_key(data_dir: Path) -> Ed25519PrivateKey:
    """The brand's firmware countersigning key (its own key, apart from the certification one), 0600, made once."""
    path = data_dir / BRAND_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key", code=ErrorCode.INVALID_BRAND_KEY)
    return key


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode()


def verify(public: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    """Whether a base64 Ed25519 signature of `message` verifies."""
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def image_dict(img: FirmwareImage) -> dict[str, Any]:
    """An image as the API shows it (with the signatures a device checks)."""
    sigs = [{"by": "partner", "key_id": img.partner_key_id, "sig": img.partner_sig}]
    if img.brand_sig and img.brand_key_id:
        sigs.append({"by": "brand", "key_id": img.brand_key_id, "sig": img.brand_sig})
    return {"image_id": img.id, "model": img.model, "partner_id": img.partner_id, "version": img.version,
            "sha256": img.sha256, "size": img.size, "status": img.status, "signatures": sigs,
            "created_at": img.created_at.isoformat(),
            "approved_at": img.approved_at.isoformat() if img.approved_at else None}


class FirmwareService:
    """Signing keys per partner, image uploads (refused unless the partner's signature verifies), approval."""

    def __init__(self, dbs: Databases, bus: EventBus, products: ProductService, *, data_dir: Path,
                 store: ImageStore | None = None) -> None:
        self.dbs = dbs
        self.bus = bus
        self.products = products
        self.data_dir = data_dir
        self.store: ImageStore = store or DirStore(data_dir / "firmware")

    # keys -------------------------------------------------------------------------------------------------------
    def brand_public(self) -> dict[str, str]:
        """The brand's firmware public key (devices pin it): key id and base64 of the raw 32 bytes."""
        pub = brand_firmware_key(self.data_dir).public_key()
        return {"by": "brand", "key_id": key_id(pub), "public_key": b64(raw_public(pub))}

    def device_trust(self, model: str) -> dict[str, str]:
        """The keys a device of `model` pins: its partner's newest signing key (a fresh one nobody holds when the
        partner has none yet) and the brand's."""
        partner = self.products.get(model).partner_id
        keys = self.keys(partner) if partner else []
        if keys:
            partner_key = max(keys, key=lambda k: k["created_at"])["public_key"]
        else:
            partner_key = b64(raw_public(Ed25519PrivateKey.generate().public_key()))
        return {"partner": partner_key, "brand": self.brand_public()["public_key"]}

    def add_key(self, partner_id: str, public_key: str | bytes, *, caller: Principal | None = None) -> dict[str, Any]:
        """Register a partner's Ed25519 public key (PEM or base64 raw); a partner only for itself."""
        check_partner(caller, partner_id)
        pub = load_public(public_key.encode() if isinstance(public_key, str) else public_key)
        kid = key_id(pub)
        with self.dbs.global_session() as s:
            existing = s.get(SigningKey, kid)
            if existing is not None and existing.partner_id != partner_id:
                raise Conflict("this key is registered to another partner", code=ErrorCode.CONFLICT)
            if existing is None:
                s.add(SigningKey(key_id=kid, partner_id=partner_id, public_key=b64(raw_public(pub))))
        return {"key_id": kid, "partner_id": partner_id, "public_key": b64(raw_public(pub))}

    def keys(self, partner_id: str, *, caller: Principal | None = None) -> list[dict[str, Any]]:
        """A partner's registered keys."""
        check_partner(caller, partner_id)
        with self.dbs.global_session() as s:
            return [{"key_id": k.key_id, "partner_id": k.partner_id, "public_key": k.public_key,
                     "created_at": k.created_at.isoformat()}
                    for k in s.scalars(select(SigningKey).where(SigningKey.partner_id == partner_id,
                                                                SigningKey.revoked_at.is_(None)))]

    def public_key(self, kid: str) -> Ed25519PublicKey:
        """A registered partner key by id."""
        with self.dbs.global_session() as s:
            k = s.get(SigningKey, kid)
            if k is None or k.revoked_at is not None:
                raise NotFound(f"no signing key {kid!r}", code=ErrorCode.UNKNOWN_SIGNING_KEY)
            return Ed25519PublicKey.from_public_bytes(base64.b64decode(k.public_key))

    # images -----------------------------------------------------------------------------------------------------
    def upload(self, chunks: Iterable[bytes], *, model: str, version: str, signature: str,
               key: str | None = None, caller: Principal | None = None, actor: str = "cli") -> dict[str, Any]:
        """Store an image (by content hash) once its partner's signature over (model, version, sha256, size)
        verifies with a key registered to the product's partner; `key` picks one (default: whichever verifies)."""
        parse_version(version)
        product = self.products.get(model)
        if caller is not None and caller.role == Role.USER:
            raise Forbidden("users cannot upload firmware", code=ErrorCode.WRONG_ROLE)
        check_partner(caller, product.partner_id)
        if not product.partner_id:
            raise InvalidInput(f"{model} has no partner, whose key would sign its firmware",
                               code=ErrorCode.PARTNER_REQUIRED)
        self.store.scratch.mkdir(parents=True, exist_ok=True)
        digest, size, tmp = hashlib.sha256(), 0, None
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self.store.scratch, prefix=".upload-")
            tmp = Path(tmp_name)
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        raise InvalidInput(f"firmware image over {MAX_IMAGE_BYTES} bytes",
                                           code=ErrorCode.PAYLOAD_TOO_LARGE)
                    digest.update(chunk)
                    f.write(chunk)
            if size == 0:
                raise InvalidInput("the firmware image is empty", code=ErrorCode.INVALID_FILE)
            sha = digest.hexdigest()
            statement = firmware_statement(model, version, sha, size)
            candidates = [k for k in self.keys(product.partner_id) if key is None or k["key_id"] == key]
            if key is not None and not candidates:
                raise NotFound(f"partner {product.partner_id} has no signing key {key!r}",
                               code=ErrorCode.UNKNOWN_SIGNING_KEY)
            if not candidates:
                raise InvalidInput(f"partner {product.partner_id} has registered no signing key "
                                   f"(POST /api/v1/partners/{product.partner_id}/signing-keys)",
                                   code=ErrorCode.UNKNOWN_SIGNING_KEY)
            signer = next((k for k in candidates if verify(self.public_key(k["key_id"]), signature, statement)), None)
            if signer is None:
                raise InvalidInput(f"the signature does not verify with partner {product.partner_id}'s key(s) "
                                   f"{', '.join(k['key_id'] for k in candidates)} over {model} {version} "
                                   f"sha256 {sha} size {size}", code=ErrorCode.BAD_SIGNATURE)
            kept: Path = tmp
            tmp = None  # the store consumes the file
            self.store.put(sha, kept)  # the same bytes under the same hash: storing them twice is harmless
            try:
                with self.dbs.global_session() as s:
                    img = FirmwareImage(model=model, partner_id=product.partner_id, version=version, sha256=sha,
                                        size=size, partner_key_id=signer["key_id"], partner_sig=signature,
                                        status="uploaded", uploaded_by=actor)
                    s.add(img)
                    s.flush()
                    return image_dict(img)
            except IntegrityError as err:
                raise Conflict(f"{model} already has an image of version {version}",
                               code=ErrorCode.VERSION_EXISTS) from err
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def path_of(self, sha256: str) -> Path | None:
        """The local file of an image's bytes, when the store keeps them on this machine (the data dir store)."""
        return self.store.local_path(sha256)

    def approve(self, image_id: int, *, actor: str) -> dict[str, Any]:
        """The brand countersigns the image's statement (operators only, checked at the edge's role gate)."""
        key = brand_firmware_key(self.data_dir)
        with self.dbs.global_session() as s:
            img = self._get(s, image_id)
            if img.status != "approved":
                statement = firmware_statement(img.model, img.version, img.sha256, img.size)
                img.brand_sig = b64(key.sign(statement))
                img.brand_key_id = key_id(key.public_key())
                img.status, img.approved_by, img.approved_at = "approved", actor, utcnow()
            out = image_dict(img)
        self.bus.publish([FirmwareApproved(image_id, out["model"], out["version"])])
        return out

    def get(self, image_id: int, *, caller: Principal | None = None) -> dict[str, Any]:
        """One image (a partner: only its own)."""
        with self.dbs.global_session() as s:
            img = self._get(s, image_id)
            check_partner(caller, img.partner_id)
            return image_dict(img)

    def find(self, model: str, version: str) -> dict[str, Any]:
        """The image of a model's version."""
        with self.dbs.global_session() as s:
            img = s.scalar(select(FirmwareImage).where(FirmwareImage.model == model, FirmwareImage.version == version))
            if img is None:
                raise NotFound(f"{model} has no firmware image of version {version}", code=ErrorCode.UNKNOWN_IMAGE)
            return image_dict(img)

    def list(self, *, model: str | None = None, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Images, newest first (a partner: its own)."""
        q = select(FirmwareImage).order_by(FirmwareImage.id.desc())
        if model:
            q = q.where(FirmwareImage.model == model)
        if caller is not None and caller.role == Role.PARTNER:
            q = q.where(FirmwareImage.partner_id == caller.partner_id)
        with self.dbs.global_session() as s:
            return [image_dict(i) for i in s.scalars(q)]

    @staticmethod
    def _get(s: Any, image_id: int) -> FirmwareImage:
        img = s.get(FirmwareImage, image_id)
        if img is None:
            raise NotFound(f"no firmware image {image_id}", code=ErrorCode.UNKNOWN_IMAGE)
        return img  # type: ignore[no-any-return]
