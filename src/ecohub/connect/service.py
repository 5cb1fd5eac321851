"""Use cases of connect: provisioning, credentials, revocation, dead letters."""

from __future__ import annotations

import builtins
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from ecohub.auth import Principal, check_partner, partner_filter
from ecohub.bus import EventBus
from ecohub.connect.domain import check_secret, hash_bind_code, hash_secret, new_bind_code, new_secret
from ecohub.connect.events import DeviceProvisioned, DeviceRevoked
from ecohub.connect.models import DeadLetter, Device, InboxEntry
from ecohub.ecosystem.service import ProductService
from ecohub.errors import ErrorCode, InvalidInput, NotFound
from ecohub.region.domain import cell_of_did, new_did
from ecohub.store import Databases, utcnow

MAX_BATCH = 10_000
CRED_CACHE_S = 5.0  # how long a credential check may be answered from memory
CRED_CACHE_MAX = 200_000
_DEVICE_INSERT = insert(Device.__table__)  # type: ignore[arg-type]
_CREDENTIALS_Q = select(Device.status, Device.secret_salt, Device.secret_hash, Device.model).where(
    Device.did == bindparam("did"))
_CREDENTIALS_MANY_Q = select(Device.did, Device.status, Device.secret_salt, Device.secret_hash, Device.model).where(
    Device.did.in_(bindparam("dids", expanding=True)))
LOOKUP_CHUNK = 500  # devices per credential query of a batch (bound parameters per statement stay small)
_DEVICE_Q = select(Device.did, Device.model, Device.status, Device.partner_id, Device.created_at,
                   Device.bound).where(Device.did == bindparam("did"))


@dataclass(frozen=True, slots=True)
class ProvisionedDevice:
    """What provisioning hands out once: the secret and bind code are never retrievable again."""

    did: str
    secret: str
    bind_code: str
    model: str
    cell: str

    def to_dict(self) -> dict[str, str]:
        return {"did": self.did, "secret": self.secret, "bind_code": self.bind_code, "model": self.model,
                "cell": self.cell}


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device's public facts (no secret material)."""

    did: str
    model: str
    cell: str
    status: str
    partner_id: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"did": self.did, "model": self.model, "cell": self.cell, "status": self.status,
                "partner_id": self.partner_id, "created_at": self.created_at}


class DeviceService:
    """Devices and their credentials, in the cell their id names."""

    def __init__(self, dbs: Databases, products: ProductService, bus: EventBus, *, secret_key: bytes,
                 default_cell: str) -> None:
        self.dbs = dbs
        self.products = products
        self.bus = bus
        self.secret_key = secret_key
        self.default_cell = default_cell
        # did → (salt, hash, model, cached at): short-lived, so a device revoked or re-keyed by another process
        # (several `ecohub api` processes answer the callout) is refused here within CRED_CACHE_S too
        self._cred_cache: OrderedDict[str, tuple[bytes, bytes, str, float]] = OrderedDict()
        self._cred_lock = threading.Lock()

    def provision(self, *, model: str, count: int = 1, cell: str | None = None,
                  caller: Principal | None = None) -> list[ProvisionedDevice]:
        """Provision `count` devices for a product at certification or later (a partner caller: its own)."""
        if not 1 <= count <= MAX_BATCH:
            raise InvalidInput(f"count must be between 1 and {MAX_BATCH}, got {count}", code=ErrorCode.INVALID_COUNT)
        cell = self.dbs.check_cell(cell or self.default_cell)
        partner_id = self.products.check_provisionable(model, caller=caller)
        out: list[ProvisionedDevice] = []
        rows: list[dict[str, Any]] = []
        for _ in range(count):
            did, secret, code, salt = new_did(cell), new_secret(), new_bind_code(), secrets.token_bytes(16)
            rows.append({"did": did, "model": model, "partner_id": partner_id, "secret_salt": salt,
                         "secret_hash": hash_secret(secret, salt), "status": "active", "created_at": utcnow(),
                         "bound": False, "bind_code_hash": hash_bind_code(code, self.secret_key)})
            out.append(ProvisionedDevice(did, secret, code, model, cell))
        # a Core insert (one statement, executemany for a batch): the ORM's unit of work was a third of the cost
        with self.dbs.cell_session(cell) as s:
            s.execute(_DEVICE_INSERT, rows)
        self.bus.publish([DeviceProvisioned(d.did, model, cell) for d in out])
        return out

    def cell_of(self, did: str) -> str:
        """The cell serving a device; refuses ids of cells this hub does not serve."""
        return self.dbs.check_cell(cell_of_did(did))

    def get(self, did: str, *, caller: Principal | None = None) -> DeviceInfo:
        """A device's facts; NotFound for unknown ids. A partner caller gets only its own products' devices that no
        user has bound (test units, stock): a user's device is never shown to a partner by its id."""
        cell = self.cell_of(did)
        with self.dbs.cell_session(cell) as s:  # every command and device read: no ORM object
            d = s.execute(_DEVICE_Q, {"did": did}).first()
        if d is None or (partner_filter(caller, None) is not None and d.bound):
            raise NotFound(f"no device {did}", code=ErrorCode.UNKNOWN_DEVICE)
        info = DeviceInfo(d.did, d.model, cell, d.status, d.partner_id, d.created_at.isoformat())
        check_partner(caller, info.partner_id)
        return info

    @staticmethod
    def mark_bound(session: Session, did: str, bound: bool) -> None:
        """Record in the binding's own transaction whether a user holds the device (partners' view follows it)."""
        session.execute(update(Device).where(Device.did == did).values(bound=bound))

    def list(self, *, cell: str | None = None, model: str | None = None, limit: int = 1000,
             caller: Principal | None = None, after: tuple[str, str] | None = None) -> list[DeviceInfo]:
        """Devices of one cell (or all), oldest first (then by did), optionally of one model; a partner caller sees
        its own (a full page). `after` = (created_at, did) of the previous page's last device (keyset paging)."""
        partner_id = partner_filter(caller, None)
        out = []
        for c in [self.dbs.check_cell(cell)] if cell else self.dbs.cells:
            q = select(Device).order_by(Device.created_at, Device.did).limit(limit)
            if after is not None:
                at = _instant(after[0])
                q = q.where(or_(Device.created_at > at, and_(Device.created_at == at, Device.did > after[1])))
            if model:
                q = q.where(Device.model == model)
            if partner_id is not None:  # a partner: its own products' units that no user has bound
                q = q.where(Device.partner_id == partner_id, Device.bound.is_(False))
            with self.dbs.cell_session(c) as s:
                out += [DeviceInfo(d.did, d.model, c, d.status, d.partner_id, d.created_at.isoformat())
                        for d in s.scalars(q)]
        out.sort(key=lambda d: (d.created_at, d.did))
        return out[:limit]

    def model_of(self, did: str) -> str | None:
        """The model of an active device, or None (used by ingest; cached with the credentials)."""
        row = self._credentials(did)
        return row[2] if row else None

    def cached_models(self, dids: Iterable[str]) -> tuple[dict[str, str | None], builtins.list[str]]:
        """No I/O: (the models memory can answer for, the devices that need `read_models`)."""
        known: dict[str, str | None] = {}
        missing: builtins.list[str] = []
        now = time.monotonic()
        for did in dids:
            hit = self._cached(did, now)
            if hit is None:
                missing.append(did)
            else:
                known[did] = hit[2]
        return known, missing

    def read_models(self, dids: Iterable[str]) -> dict[str, str | None]:
        """The models of active devices among `dids` (None: unknown or not active), one query per cell and chunk
        of LOOKUP_CHUNK, cached with the credentials. Ingest reads a batch's devices this way, off its event loop:
        in a fleet that reports once a minute no device is still cached from its last message, and one query per
        message on the event loop stalled every other device's message, command and API call behind it."""
        by_cell: dict[str, builtins.list[str]] = {}
        out: dict[str, str | None] = {}
        for did in dids:
            try:
                by_cell.setdefault(self.cell_of(did), []).append(did)
            except (InvalidInput, NotFound):
                out[did] = None
        for cell, group in by_cell.items():
            for i in range(0, len(group), LOOKUP_CHUNK):
                chunk = group[i:i + LOOKUP_CHUNK]
                with self.dbs.cell_session(cell) as s:
                    rows = s.execute(_CREDENTIALS_MANY_Q, {"dids": chunk}).all()
                now = time.monotonic()
                for d in rows:
                    if d.status == "active":
                        self._remember(d.did, (d.secret_salt, d.secret_hash, d.model), now)
                        out[d.did] = d.model
                for did in chunk:
                    out.setdefault(did, None)
        return out

    def _remember(self, did: str, row: tuple[bytes, bytes, str], now: float) -> None:
        with self._cred_lock:  # the callout's thread, the event loop and ingest's lookups (a pool thread) fill it
            self._cred_cache[did] = (*row, now)
            self._cred_cache.move_to_end(did)
            if len(self._cred_cache) > CRED_CACHE_MAX:
                self._cred_cache.popitem(last=False)

    def _forget(self, did: str) -> None:
        with self._cred_lock:
            self._cred_cache.pop(did, None)

    def _cached(self, did: str, now: float) -> tuple[bytes, bytes, str, float] | None:
        hit = self._cred_cache.get(did)
        return hit if hit is not None and now - hit[3] < CRED_CACHE_S else None

    def _credentials(self, did: str) -> tuple[bytes, bytes, str] | None:
        now = time.monotonic()
        hit = self._cached(did, now)
        if hit is not None:
            return hit[0], hit[1], hit[2]
        try:
            cell = self.cell_of(did)
        except (InvalidInput, NotFound):
            return None
        with self.dbs.cell_session(cell) as s:  # each CONNECT (a batch of ingest reads through read_models)
            d = s.execute(_CREDENTIALS_Q, {"did": did}).first()
        if d is None or d.status != "active":
            return None
        row = (d.secret_salt, d.secret_hash, d.model)
        self._remember(did, row, now)
        return row

    def verify(self, did: str, secret: str) -> bool:
        """True when `secret` is the current secret of an active device."""
        row = self._credentials(did)
        return row is not None and check_secret(secret, row[0], row[1])

    def revoke(self, did: str) -> None:
        """Disable a device's credentials; the broker adapter drops its session on the event."""
        cell = self.cell_of(did)
        with self.dbs.cell_session(cell) as s:
            d = s.get(Device, did)
            if d is None:
                raise NotFound(f"no device {did}", code=ErrorCode.UNKNOWN_DEVICE)
            d.status = "revoked"
            d.revoked_at = utcnow()
        self._forget(did)
        self.bus.publish([DeviceRevoked(did, cell)])

    def consume_bind_code(self, session: Session, did: str, code: str) -> bool:
        """Use up the code printed at provisioning, in the caller's transaction: true once, for the right code."""
        result = session.execute(
            update(Device)
            .where(Device.did == did, Device.status == "active",
                   Device.bind_code_hash == hash_bind_code(code, self.secret_key))
            .values(bind_code_hash=None))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def reset_credentials(self, did: str) -> ProvisionedDevice:
        """New secret and bind code (on unbinding): the old secret stops working and its session is dropped."""
        cell = self.cell_of(did)
        secret, code, salt = new_secret(), new_bind_code(), secrets.token_bytes(16)
        with self.dbs.cell_session(cell) as s:
            d = s.get(Device, did)
            if d is None:
                raise NotFound(f"no device {did}", code=ErrorCode.UNKNOWN_DEVICE)
            d.secret_salt, d.secret_hash = salt, hash_secret(secret, salt)
            d.bind_code_hash = hash_bind_code(code, self.secret_key)
            model = d.model
        self._forget(did)
        self.bus.publish([DeviceRevoked(did, cell)])  # the broker drops the session that used the old secret
        return ProvisionedDevice(did, secret, code, model, cell)

    def prune_inbox(self, cell: str, *, before_ms: int, batch: int = 5000) -> int:
        """Forget dedup entries older than `before_ms` (in bounded batches); returns how many."""
        dropped = 0
        while True:
            with self.dbs.cell_session(cell) as s:
                old = select(InboxEntry.did, InboxEntry.msg_id, InboxEntry.digest).where(
                    InboxEntry.received_ms < before_ms).limit(batch)
                keys = s.execute(old).all()
                if not keys:
                    return dropped
                s.execute(delete(InboxEntry).where(
                    tuple_(InboxEntry.did, InboxEntry.msg_id, InboxEntry.digest).in_([tuple(k) for k in keys])))
            dropped += len(keys)

    def message_counts(self, cell: str, *, since_ms: int) -> dict[str, int]:
        """Messages ingest accepted per device since `since_ms` (from the dedup inbox, so within `inbox_days`)."""
        with self.dbs.cell_session(cell) as s:
            return {did: int(n) for did, n in s.execute(
                select(InboxEntry.did, func.count()).where(InboxEntry.received_ms >= since_ms)
                .group_by(InboxEntry.did))}

    def count_by_partner(self) -> dict[str, int]:
        """Active devices per partner, summed over every cell (aggregate only: no device or user data)."""
        totals: dict[str, int] = {}
        q = (select(Device.partner_id, func.count()).where(Device.status == "active", Device.partner_id.is_not(None))
             .group_by(Device.partner_id))
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                for partner_id, n in s.execute(q):
                    if partner_id is not None:
                        totals[partner_id] = totals.get(partner_id, 0) + n
        return totals

    def forget_cached(self, did: str) -> None:
        """Drop cached credentials (another process changed them)."""
        self._forget(did)


class DeadLetterService:
    """Read access to refused messages, per cell."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs

    def list(self, *, cell: str | None = None, did: str | None = None, limit: int = 100,
             before: tuple[int, str, int] | None = None) -> list[dict[str, Any]]:
        """Newest first: by received_ms, then cell, then id, all descending. `before` = (received_ms, cell, id) of
        the previous page's last row (keyset paging)."""
        cells = [self.dbs.check_cell(cell)] if cell else self.dbs.cells
        out: list[dict[str, Any]] = []
        for c in cells:
            q = select(DeadLetter).order_by(DeadLetter.received_ms.desc(), DeadLetter.id.desc()).limit(limit)
            if before is not None:
                ms, last_cell, last_id = before
                if c > last_cell:  # this cell's rows of the same instant came before the last one
                    q = q.where(DeadLetter.received_ms < ms)
                elif c < last_cell:
                    q = q.where(DeadLetter.received_ms <= ms)
                else:
                    q = q.where(or_(DeadLetter.received_ms < ms,
                                    and_(DeadLetter.received_ms == ms, DeadLetter.id < last_id)))
            if did:
                q = q.where(DeadLetter.did == did)
            with self.dbs.cell_session(c) as s:
                out += [
                    {"id": r.id, "cell": c, "did": r.did, "topic": r.topic, "msg_id": r.msg_id, "code": r.code,
                     "reason": r.reason, "size": r.size, "received_ms": r.received_ms,
                     "payload": r.payload.decode("utf-8", "replace")}
                    for r in s.scalars(q)
                ]
        out.sort(key=lambda r: (r["received_ms"], r["cell"], r["id"]), reverse=True)
        return out[:limit]


def _instant(text: str) -> datetime:
    """A created_at from a paging cursor (as DeviceInfo renders it)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise InvalidInput(f"bad paging position {text!r}", code=ErrorCode.INVALID_CURSOR) from err
