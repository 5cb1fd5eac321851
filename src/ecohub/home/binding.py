"""Use cases of binding: one-time short-lived claim codes, claiming a device into a home, unbinding with reset."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ecohub.auth import Principal
from ecohub.bus import EventBus
from ecohub.connect.domain import hash_bind_code, new_bind_code
from ecohub.connect.service import DeviceService
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound, Unauthorized
from ecohub.home.domain import HomeRole
from ecohub.home.events import DeviceBound, DeviceUnbound
from ecohub.home.homes import HomeService, check_name
from ecohub.home.models import BindCode, Binding, DeviceShare
from ecohub.region.domain import cell_of_did
from ecohub.store import Databases, aware, now_ms, utcnow
from ecohub.twin.service import TwinService

FRESH_CODE_TTL_S = 600


class BindingService:
    """Claims and unbinding, in the cell the device id names (which must be the user's cell)."""

    def __init__(self, dbs: Databases, homes: HomeService, devices: DeviceService, bus: EventBus, *,
                 secret_key: bytes, code_ttl_s: int = FRESH_CODE_TTL_S) -> None:
        self.dbs = dbs
        self.bus = bus
        self.homes = homes
        self.devices = devices
        self.secret_key = secret_key
        self.code_ttl_s = code_ttl_s

    def issue_code(self, did: str, secret: str) -> dict[str, Any]:
        """A fresh one-time code the device shows (authenticated by the device's own credentials)."""
        if not self.devices.verify(did, secret):
            raise Unauthorized("wrong device id or secret", code=ErrorCode.INVALID_DEVICE_CREDENTIALS)
        code = new_bind_code()
        with self.dbs.cell_session(self.devices.cell_of(did)) as s:
            # the device shows one code at a time: a new one replaces any unused fresh code
            s.execute(delete(BindCode).where(BindCode.did == did, BindCode.kind == "fresh", BindCode.used_at.is_(None)))
            s.add(BindCode(id=secrets.token_hex(8), did=did, code_hash=hash_bind_code(code, self.secret_key),
                           kind="fresh", expires_at=utcnow() + timedelta(seconds=self.code_ttl_s)))
        return {"bind_code": code, "expires_in": self.code_ttl_s}

    def claim(self, p: Principal, home_id: str, *, did: str, code: str, room_id: str | None = None,
              name: str = "") -> dict[str, Any]:
        """Bind a device of the caller's cell into their home with a valid, unused code."""
        device_cell = cell_of_did(did)
        if device_cell != p.cell:
            raise Forbidden(f"device {did} is served by region cell {device_cell!r}; your account is in {p.cell!r}",
                            code=ErrorCode.WRONG_CELL, cell=device_cell)
        self.homes.require(p, home_id, HomeRole.OWNER)
        info = self.devices.get(did)
        if info.status != "active":
            raise Conflict(f"device {did} is {info.status}", code=ErrorCode.DEVICE_INACTIVE)
        code_hash = hash_bind_code(code, self.secret_key)
        now = utcnow()
        try:
            with self.dbs.cell_session(device_cell) as s:
                bound = s.get(Binding, did)
                if bound is not None:
                    where = "this home" if bound.home_id == home_id else "another home"
                    raise Conflict(f"device {did} is already bound to {where}; it must be removed there first",
                                   code=ErrorCode.DEVICE_ALREADY_BOUND)
                if room_id is not None:
                    self.homes.room(s, home_id, room_id)
                self._consume(s, did, code, code_hash, now)
                since = now_ms()
                sealed = self.homes.seal_name(s, device_cell, home_id, "bindings", did,
                                              name.strip()[:100] or info.model)
                s.add(Binding(did=did, home_id=home_id, room_id=room_id, name=sealed, bound_by=p.subject,
                              bound_ms=since))
                s.flush()
                DeviceService.mark_bound(s, did, True)
                TwinService.drop_undelivered(s, did)  # what the partner or operator left pending is not the user's
        except IntegrityError as err:
            raise Conflict(f"device {did} was bound by someone else just now",
                           code=ErrorCode.DEVICE_ALREADY_BOUND) from err
        self.bus.publish([DeviceBound(did, device_cell, home_id, since)])
        return {"did": did, "home_id": home_id, "room_id": room_id, "model": info.model}

    def _consume(self, s: Any, did: str, code: str, code_hash: bytes, now: datetime) -> None:
        """Use up a fresh or printed code; refuse unknown, reused and expired ones with their reason."""
        row = s.scalar(select(BindCode).where(BindCode.did == did, BindCode.code_hash == code_hash))
        if row is not None:
            if row.used_at is not None:
                raise InvalidInput("this bind code was already used; show a new one on the device",
                                   code=ErrorCode.BIND_CODE_USED)
            if row.expires_at is not None and aware(row.expires_at) <= now:
                raise InvalidInput("this bind code has expired; show a new one on the device",
                                   code=ErrorCode.BIND_CODE_EXPIRED)
            taken = s.execute(update(BindCode).where(BindCode.id == row.id, BindCode.used_at.is_(None))
                              .values(used_at=now))
            if taken.rowcount != 1:
                raise InvalidInput("this bind code was already used", code=ErrorCode.BIND_CODE_USED)
            return
        if self.devices.consume_bind_code(s, did, code):
            # remember the printed code as used, so presenting it again says so instead of "wrong code"
            s.add(BindCode(id=secrets.token_hex(8), did=did, code_hash=code_hash, kind="printed", used_at=now))
            return
        raise InvalidInput("wrong bind code for this device", code=ErrorCode.INVALID_BIND_CODE)

    def update(self, p: Principal, home_id: str, did: str, *, name: str | None = None,
               room_id: str | None = None, clear_room: bool = False) -> None:
        """Rename a bound device or move it to a room (owner or member)."""
        self.homes.require(p, home_id, HomeRole.MEMBER)
        cell = self.homes.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            b = s.get(Binding, did)
            if b is None or b.home_id != home_id:
                raise NotFound(f"no device {did} in home {home_id}", code=ErrorCode.UNKNOWN_DEVICE)
            if name is not None:
                b.name = self.homes.seal_name(s, cell, home_id, "bindings", did, check_name(name, "device"))
            if room_id is not None:
                b.room_id = self.homes.room(s, home_id, room_id).id
            elif clear_room:
                b.room_id = None

    def release(self, cell: str, dids: Sequence[str]) -> int:
        """Unbind and re-key the devices of a user being erased: their old secrets stop working at once, their
        sessions are dropped, and no later data of theirs is stored for anyone (returns how many)."""
        released: list[tuple[str, str]] = []
        with self.dbs.cell_session(cell) as s:
            for b in s.scalars(select(Binding).where(Binding.did.in_(list(dids)))):
                released.append((b.did, b.home_id))
                s.delete(b)
                DeviceService.mark_bound(s, b.did, False)
            s.execute(delete(BindCode).where(BindCode.did.in_(list(dids)), BindCode.used_at.is_(None)))
            s.execute(delete(DeviceShare).where(DeviceShare.did.in_(list(dids))))  # shares end with the binding
        for did, home_id in released:
            creds = self.devices.reset_credentials(did)
            self.bus.publish([DeviceUnbound(did, creds.cell, home_id)])
        return len(released)

    def unbind(self, p: Principal, home_id: str, did: str) -> dict[str, Any]:
        """Remove a device from the home (owner): its credentials are reset and returned once for the re-pairing."""
        self.homes.require(p, home_id, HomeRole.OWNER)
        with self.dbs.cell_session(self.homes.cell_of(p)) as s:
            b = s.get(Binding, did)
            if b is None or b.home_id != home_id:
                raise NotFound(f"no device {did} in home {home_id}", code=ErrorCode.UNKNOWN_DEVICE)
            s.delete(b)
            DeviceService.mark_bound(s, did, False)
            TwinService.drop_undelivered(s, did)  # the old owner's pending wishes never reach the next owner
            # codes issued under the old credentials die with them; used ones stay so a reuse is named as such
            s.execute(delete(BindCode).where(BindCode.did == did, BindCode.used_at.is_(None)))
            s.execute(delete(DeviceShare).where(DeviceShare.did == did))  # its shares end with the binding
        creds = self.devices.reset_credentials(did)
        self.bus.publish([DeviceUnbound(did, creds.cell, home_id)])
        return {"did": did, "secret": creds.secret, "bind_code": creds.bind_code,
                "note": "the device's old secret no longer works; give it this one when resetting it"}
