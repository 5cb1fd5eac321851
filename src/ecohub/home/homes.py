"""Use cases of homes: homes and rooms, who may do what in them (owner, member, guest), sharing."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select

from ecohub.auth import Principal, Role, Scope, check_granted, check_scope
from ecohub.bus import EventBus
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.home.accounts import AccountService
from ecohub.home.domain import HomeRole
from ecohub.home.events import HomeShared, MembershipEnded
from ecohub.home.models import Binding, DeviceShare, Home, HomeMember, Room, User
from ecohub.privacy.sealing import PayloadSealer, name_aad
from ecohub.region.domain import cell_of_did
from ecohub.store import Databases, aware, utcnow

MAX_SHARE_S = 10 * 365 * 24 * 3600


def _iso(ts: datetime | None) -> str | None:
    return aware(ts).isoformat() if ts is not None else None


def _expired(ts: datetime | None) -> bool:
    return ts is not None and aware(ts) <= utcnow()


def check_name(name: str, what: str) -> str:
    """A name a user gives (home, room, device), stripped; 1 to 100 characters or InvalidInput."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput(f"{what} name must be 1 to 100 characters", code=ErrorCode.INVALID_NAME)
    return name


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """A user's access to a bound device: the home, the role, and the epoch start they may see."""

    did: str
    cell: str
    home_id: str
    role: HomeRole
    since_ms: int
    room_id: str | None
    share_id: str | None = None  # set when the access comes from a device share, not from a home


class HomeService:
    """Homes, rooms and memberships in the caller's cell; every check reads the database (revocation is immediate).

    Names are sealed with the home owner's key (privacy.sealing): written with `seal_name`, read with `Opener.name`.
    """

    def __init__(self, dbs: Databases, accounts: AccountService, bus: EventBus, sealer: PayloadSealer) -> None:
        self.dbs = dbs
        self.accounts = accounts
        self.bus = bus
        self.sealer = sealer
        # set by the composition root to the audit log: access through an app is audited like an operator's
        self.app_audit: Callable[..., Any] | None = None

    def _audit_app(self, p: Principal, cell: str, scope: Scope | None, subject: str, **detail: Any) -> None:
        if p.role == Role.APP and self.app_audit is not None:
            self.app_audit(cell, actor=p.actor, action=f"app.access.{scope or 'none'}", subject=subject,
                           detail={"app_id": p.app_id, **detail})

    def seal_name(self, s: Any, cell: str, home_id: str, table: str, row_id: str, name: str,
                  owner: str | None = None) -> str:
        """A (validated) name of a home, room or bound device, sealed under the home owner's key."""
        if owner is None:
            owner = s.scalar(select(Home.owner_id).where(Home.id == home_id))
            if owner is None:
                raise NotFound(f"no home {home_id}", code=ErrorCode.UNKNOWN_HOME)
        return self.sealer.seal_text(s, cell, owner, name, name_aad(table, row_id))

    @staticmethod
    def cell_of(p: Principal, scope: Scope | None = None) -> str:
        """The caller's cell; only users have homes. An app token acting for a user passes only where the use case
        names the scope it needs (`scope`) and the user granted it; without one, app tokens are refused."""
        if p.role == Role.APP:
            check_scope(p, scope)
        elif p.role != Role.USER:
            raise Forbidden("homes belong to user accounts", code=ErrorCode.WRONG_ROLE)
        if not p.cell:
            raise Forbidden("homes belong to user accounts", code=ErrorCode.WRONG_ROLE)
        return p.cell

    def role_in(self, p: Principal, home_id: str, scope: Scope | None = None) -> HomeRole:
        """The caller's role in a home; NotFound when they have none (others' homes are not revealed)."""
        cell = self.cell_of(p, scope)
        with self.dbs.cell_session(cell) as s:
            home = s.get(Home, home_id)
            if home is not None and home.owner_id == p.subject:
                return HomeRole.OWNER
            m = s.get(HomeMember, (home_id, p.subject)) if home is not None else None
            if m is None or _expired(m.expires_at):
                raise NotFound(f"no home {home_id}", code=ErrorCode.UNKNOWN_HOME)
            return HomeRole[m.role.upper()]

    def require(self, p: Principal, home_id: str, least: HomeRole, scope: Scope | None = None) -> HomeRole:
        """The caller's role, if it is at least `least`; Forbidden naming what is needed otherwise."""
        role = self.role_in(p, home_id, scope)
        if role < least:
            raise Forbidden(f"this needs the {least.label} of the home; you are {role.label}", code=ErrorCode.HOME_ROLE)
        return role

    def create(self, p: Principal, name: str) -> dict[str, str]:
        """A new home owned by the caller."""
        cell = self.cell_of(p)
        home_id = secrets.token_hex(8)
        with self.dbs.cell_session(cell) as s:
            sealed = self.seal_name(s, cell, home_id, "homes", home_id, check_name(name, "home"), owner=p.subject)
            s.add(Home(id=home_id, owner_id=p.subject, name=sealed))
        return {"home_id": home_id}

    def of_user(self, p: Principal) -> list[dict[str, Any]]:
        """Homes the caller owns or was invited into (unexpired); an app: those holding a device granted to it."""
        cell = self.cell_of(p, Scope.HOMES_READ)
        with self.dbs.cell_session(cell) as s:
            opener = self.sealer.opener(s, cell)
            homes = self._homes_of(s, p)
            if p.role == Role.APP:
                granted = set(s.scalars(select(Binding.home_id).where(Binding.did.in_(list(p.dids)))))
                homes = [(h, r, e) for h, r, e in homes if h.id in granted]
            return [{"home_id": h.id, "name": opener.name(h.owner_id, "homes", h.id, h.name), "role": r.label,
                     "expires_at": _iso(e)} for h, r, e in homes]

    @staticmethod
    def _homes_of(s: Any, p: Principal) -> list[tuple[Home, HomeRole, datetime | None]]:
        """(home, the caller's role, membership expiry) of every home the caller owns or is an unexpired member of."""
        owned = [(h, HomeRole.OWNER, None) for h in s.scalars(select(Home).where(Home.owner_id == p.subject))]
        shared = [(h, HomeRole[m.role.upper()], m.expires_at) for h, m in s.execute(
            select(Home, HomeMember).join(HomeMember, HomeMember.home_id == Home.id)
            .where(HomeMember.user_id == p.subject,
                   or_(HomeMember.expires_at.is_(None), HomeMember.expires_at > utcnow())))]
        return owned + shared

    def get(self, p: Principal, home_id: str) -> dict[str, Any]:
        """A home with its rooms and devices, as the caller may see it (an app: the devices granted to it)."""
        role = self.role_in(p, home_id, Scope.HOMES_READ)
        with self.dbs.cell_session(self.cell_of(p, Scope.HOMES_READ)) as s:
            home = s.get(Home, home_id)
            assert home is not None
            rooms = s.scalars(select(Room).where(Room.home_id == home_id).order_by(Room.created_at)).all()
            bindings = s.scalars(select(Binding).where(Binding.home_id == home_id).order_by(Binding.bound_ms)).all()
            if p.role == Role.APP:
                bindings = [b for b in bindings if b.did in p.dids]
            opener, owner = self.sealer.opener(s, self.cell_of(p, Scope.HOMES_READ)), home.owner_id
            return {"home_id": home.id, "name": opener.name(owner, "homes", home.id, home.name),
                    "role": role.label,
                    "rooms": [{"room_id": r.id, "name": opener.name(owner, "rooms", r.id, r.name)}
                              for r in rooms],
                    "devices": [{"did": b.did, "name": opener.name(owner, "bindings", b.did, b.name),
                                 "room_id": b.room_id} for b in bindings]}

    def rename(self, p: Principal, home_id: str, name: str) -> None:
        """Rename a home (owner)."""
        self.require(p, home_id, HomeRole.OWNER)
        cell = self.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            home = s.get(Home, home_id)
            assert home is not None
            home.name = self.seal_name(s, cell, home_id, "homes", home_id, check_name(name, "home"),
                                       owner=home.owner_id)

    def delete(self, p: Principal, home_id: str) -> None:
        """Delete an empty home (owner); devices must be unbound first, which resets their credentials."""
        self.require(p, home_id, HomeRole.OWNER)
        with self.dbs.cell_session(self.cell_of(p)) as s:
            if s.scalar(select(func.count()).select_from(Binding).where(Binding.home_id == home_id)):
                raise Conflict("the home still has devices; unbind them first", code=ErrorCode.HOME_NOT_EMPTY)
            s.execute(delete(HomeMember).where(HomeMember.home_id == home_id))
            s.execute(delete(Room).where(Room.home_id == home_id))
            s.execute(delete(Home).where(Home.id == home_id))

    def add_room(self, p: Principal, home_id: str, name: str) -> dict[str, str]:
        """A new room (owner or member)."""
        self.require(p, home_id, HomeRole.MEMBER)
        room_id = secrets.token_hex(8)
        cell = self.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            s.add(Room(id=room_id, home_id=home_id,
                       name=self.seal_name(s, cell, home_id, "rooms", room_id, check_name(name, "room"))))
        return {"room_id": room_id}

    def room(self, s: Any, home_id: str, room_id: str) -> Room:
        room = s.get(Room, room_id)
        if room is None or room.home_id != home_id:
            raise NotFound(f"no room {room_id} in home {home_id}", code=ErrorCode.UNKNOWN_ROOM)
        return room  # type: ignore[no-any-return]

    def rename_room(self, p: Principal, home_id: str, room_id: str, name: str) -> None:
        """Rename a room (owner or member)."""
        self.require(p, home_id, HomeRole.MEMBER)
        cell = self.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            self.room(s, home_id, room_id).name = self.seal_name(s, cell, home_id, "rooms", room_id,
                                                                  check_name(name, "room"))

    def delete_room(self, p: Principal, home_id: str, room_id: str) -> None:
        """Delete a room; its devices stay in the home without a room."""
        self.require(p, home_id, HomeRole.MEMBER)
        with self.dbs.cell_session(self.cell_of(p)) as s:
            room = self.room(s, home_id, room_id)
            for b in s.scalars(select(Binding).where(Binding.room_id == room_id)):
                b.room_id = None
            s.delete(room)

    def share(self, p: Principal, home_id: str, *, email: str, role: str,
              expires_in_s: int | None = None) -> dict[str, Any]:
        """Invite an existing user of the same cell as member (control) or guest (view), optionally until a time."""
        self.require(p, home_id, HomeRole.OWNER)
        r = HomeRole.parse(role)
        if expires_in_s is not None and not 60 <= expires_in_s <= MAX_SHARE_S:
            raise InvalidInput(f"expires_in_s must be between 60 and {MAX_SHARE_S}", code=ErrorCode.INVALID_EXPIRY)
        found = self.accounts.locate(email)
        if found is None:
            raise NotFound("no account with this email", code=ErrorCode.UNKNOWN_USER)
        cell, user_id = found
        if cell != p.cell:
            raise Forbidden(f"that account is served by region cell {cell!r}; homes are shared within one cell",
                            code=ErrorCode.WRONG_CELL, cell=cell)
        if user_id == p.subject:
            raise InvalidInput("you own this home already", code=ErrorCode.SHARE_WITH_SELF)
        expires = utcnow() + timedelta(seconds=expires_in_s) if expires_in_s else None
        with self.dbs.cell_session(cell) as s:
            m = s.get(HomeMember, (home_id, user_id))
            if m is None:
                s.add(HomeMember(home_id=home_id, user_id=user_id, role=r.label, invited_by=p.subject,
                                 expires_at=expires))
            else:
                m.role, m.expires_at = r.label, expires
        self.bus.publish([HomeShared(home_id, cell, user_id, r.label, p.subject)])
        return {"user_id": user_id, "role": r.label, "expires_at": expires.isoformat() if expires else None}

    def members(self, p: Principal, home_id: str) -> list[dict[str, Any]]:
        """Who shares the home (ids and roles only: other users' emails are not shown)."""
        self.role_in(p, home_id)
        with self.dbs.cell_session(self.cell_of(p)) as s:
            home = s.get(Home, home_id)
            assert home is not None
            rows = s.scalars(select(HomeMember).where(HomeMember.home_id == home_id)).all()
            out = [{"user_id": home.owner_id, "role": "owner", "expires_at": None}]
            out += [{"user_id": m.user_id, "role": m.role, "expires_at": _iso(m.expires_at)} for m in rows]
            return out

    def revoke(self, p: Principal, home_id: str, user_id: str) -> None:
        """End a membership: the owner removes anyone, a member or guest removes themself; effective at once."""
        role = self.role_in(p, home_id)
        if role < HomeRole.OWNER and user_id != p.subject:
            raise Forbidden("only the owner removes other people", code=ErrorCode.HOME_ROLE)
        with self.dbs.cell_session(self.cell_of(p)) as s:
            m = s.get(HomeMember, (home_id, user_id))
            if m is None:
                raise NotFound(f"user {user_id} is not a member of home {home_id}", code=ErrorCode.UNKNOWN_MEMBER)
            s.delete(m)
        self.bus.publish([MembershipEnded(home_id, self.cell_of(p), user_id)])

    def device_access(self, p: Principal, did: str, least: HomeRole, scope: Scope | None = None) -> DeviceAccess:
        """The caller's access to a bound device; wrong cell, unbound or not theirs (an app: not granted, or not
        with the `scope` this use needs) → refused."""
        cell = self.cell_of(p, scope)
        check_granted(p, did)
        device_cell = cell_of_did(did)
        if device_cell != cell:
            raise Forbidden(f"device {did} is served by region cell {device_cell!r}; your account is in {cell!r}",
                            code=ErrorCode.WRONG_CELL, cell=device_cell)
        with self.dbs.cell_session(cell) as s:
            b = s.get(Binding, did)
        if b is None:
            raise NotFound(f"no device {did} in your homes", code=ErrorCode.UNKNOWN_DEVICE)
        try:
            role = self.require(p, b.home_id, least, scope)
        except (NotFound, Forbidden) as err:
            # not in one of the caller's homes (or too low a role there): a share of this one device is the only
            # other way in
            with self.dbs.cell_session(cell) as s:
                share = self._shares_of(s, p, did)
                found = share[0] if share else None
                share_id, role_label = (found.id, found.role) if found else (None, "")
            if share_id is None and isinstance(err, Forbidden):
                raise
            if share_id is None:
                raise NotFound(f"no device {did} in your homes", code=ErrorCode.UNKNOWN_DEVICE) from None
            role = HomeRole[role_label.upper()]
            if role < least:
                raise Forbidden(f"this needs a {least.label} share of the device; yours is {role.label}",
                                code=ErrorCode.SHARE_ROLE) from None
            self._audit_app(p, cell, scope, did)
            return DeviceAccess(did, cell, b.home_id, role, b.bound_ms, None, share_id)
        self._audit_app(p, cell, scope, did)
        return DeviceAccess(did, cell, b.home_id, role, b.bound_ms, b.room_id)

    @staticmethod
    def _shares_of(s: Any, p: Principal, did: str | None = None) -> list[DeviceShare]:
        """The caller's live device shares (one device or all): addressed to their account or, still pending, to
        their e-mail; unexpired; and whose sharer still owns the home the device is bound to. A pending share is
        claimed (its user id set) on first use, so it survives a later change of the invitee's e-mail."""
        user = s.get(User, p.subject)
        if user is None:
            return []
        q = (select(DeviceShare).join(Binding, Binding.did == DeviceShare.did)
             .join(Home, Home.id == Binding.home_id)
             .where(Home.owner_id == DeviceShare.owner_id,
                    or_(DeviceShare.user_id == p.subject,
                        (DeviceShare.user_id.is_(None)) & (DeviceShare.email_hash == user.email_hash)),
                    or_(DeviceShare.expires_at.is_(None), DeviceShare.expires_at > utcnow())))
        if did is not None:
            q = q.where(DeviceShare.did == did)
        rows = list(s.scalars(q.order_by(DeviceShare.created_at)))
        for r in rows:
            if r.user_id is None:
                r.user_id = p.subject
        return rows

    def accessible_devices(self, p: Principal, home_id: str | None = None,
                           scope: Scope | None = None) -> list[DeviceAccess]:
        """Every bound device the caller may see (in one home or all of theirs; an app: the granted ones)."""
        cell = self.cell_of(p, scope)
        with self.dbs.cell_session(cell) as s:  # roles only: no home name needs opening here
            roles = {h.id: r for h, r, _ in self._homes_of(s, p) if home_id is None or h.id == home_id}
            if home_id is not None and not roles:
                raise NotFound(f"no home {home_id}", code=ErrorCode.UNKNOWN_HOME)
            rows = s.scalars(select(Binding).where(Binding.home_id.in_(list(roles))).order_by(Binding.bound_ms)).all()
            out = [DeviceAccess(b.did, cell, b.home_id, roles[b.home_id], b.bound_ms, b.room_id) for b in rows]
            if home_id is None:  # all of the caller's devices: those shared with them too ("shared with me")
                mine = {a.did for a in out}
                for share in self._shares_of(s, p):
                    b = s.get(Binding, share.did)
                    if b is not None and share.did not in mine:
                        mine.add(share.did)
                        out.append(DeviceAccess(b.did, cell, b.home_id, HomeRole[share.role.upper()], b.bound_ms,
                                                None, share.id))
        if p.role == Role.APP:
            out = [a for a in out if a.did in p.dids]
            self._audit_app(p, cell, scope, p.subject, devices=len(out))
        return out

    # -- device shares ------------------------------------------------------------------------------------------
    def share_device(self, p: Principal, did: str, *, email: str, role: str,
                     expires_at: datetime | None = None) -> dict[str, Any]:
        """Share one device (its home's owner) with a person by e-mail as member (control) or guest (view),
        optionally until `expires_at`. The answer is the same whether or not an account has that address (no
        account enumeration): a share to an address without an account of this cell stays pending and takes
        effect when such an account signs in. Sharing again with the same address replaces role and expiry."""
        access = self.device_access(p, did, HomeRole.OWNER)
        if access.share_id is not None:
            raise Forbidden("only the owner of the device's home shares it", code=ErrorCode.HOME_ROLE)
        r = HomeRole.parse(role)
        if expires_at is not None:
            expires_at = aware(expires_at)
            if not utcnow() + timedelta(seconds=60) <= expires_at <= utcnow() + timedelta(seconds=MAX_SHARE_S):
                raise InvalidInput("expires_at must be at least a minute and at most ten years ahead",
                                   code=ErrorCode.INVALID_EXPIRY)
        email_hash = self.accounts.emails.lookup_hash(email)  # InvalidInput when it is not an address
        cell = access.cell
        with self.dbs.cell_session(cell) as s:
            me = s.get(User, p.subject)
            if me is not None and me.email_hash == email_hash:
                raise InvalidInput("you cannot share a device with yourself", code=ErrorCode.SHARE_WITH_SELF)
            row = s.scalar(select(DeviceShare).where(DeviceShare.did == did, DeviceShare.email_hash == email_hash))
            if row is None:
                row = DeviceShare(id=secrets.token_hex(8), did=did, owner_id=p.subject, email_hash=email_hash,
                                  email="", role=r.label, expires_at=expires_at)
                row.email = self.sealer.seal_text(s, cell, p.subject, email.strip().lower(),
                                                  name_aad("device_shares", row.id))
                invitee = s.scalar(select(User.id).where(User.email_hash == email_hash))
                row.user_id = invitee
                s.add(row)
                s.flush()
            else:
                row.owner_id, row.role, row.expires_at = p.subject, r.label, expires_at
            return self._share_view(row, email.strip().lower())

    @staticmethod
    def _share_view(row: DeviceShare, email: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"share_id": row.id, "did": row.did, "role": row.role,
                               "created_at": _iso(row.created_at), "expires_at": _iso(row.expires_at),
                               "expired": _expired(row.expires_at)}
        if email is not None:
            out["email"] = email
        return out

    def device_shares(self, p: Principal, did: str) -> list[dict[str, Any]]:
        """The device's shares: all of them, with the invitees' e-mails, for the owner; an invitee: their own."""
        access = self.device_access(p, did, HomeRole.GUEST)
        with self.dbs.cell_session(access.cell) as s:
            if access.share_id is not None:
                row = s.get(DeviceShare, access.share_id)
                return [self._share_view(row, None)] if row is not None else []
            if access.role < HomeRole.OWNER:
                raise Forbidden("only the owner of the device's home sees its shares", code=ErrorCode.HOME_ROLE)
            opener = self.sealer.opener(s, access.cell)
            rows = s.scalars(select(DeviceShare).where(DeviceShare.did == did).order_by(DeviceShare.created_at))
            return [self._share_view(r, opener.name(r.owner_id, "device_shares", r.id, r.email)) for r in rows]

    def end_share(self, p: Principal, did: str, share_id: str) -> None:
        """End a share: the owner ends any share of the device, the invitee leaves theirs; effective at once."""
        cell = self.cell_of(p)
        with self.dbs.cell_session(cell) as s:
            row = s.get(DeviceShare, share_id)
            mine = row is not None and row.did == did and (
                row.user_id == p.subject or any(r.id == share_id for r in self._shares_of(s, p, did)))
        if row is None or row.did != did:
            raise NotFound(f"no share {share_id} of device {did}", code=ErrorCode.UNKNOWN_SHARE)
        if not mine:
            try:
                access = self.device_access(p, did, HomeRole.OWNER)
            except (NotFound, Forbidden):
                raise NotFound(f"no share {share_id} of device {did}", code=ErrorCode.UNKNOWN_SHARE) from None
            if access.share_id is not None:
                raise NotFound(f"no share {share_id} of device {did}", code=ErrorCode.UNKNOWN_SHARE)
        with self.dbs.cell_session(cell) as s:
            s.execute(delete(DeviceShare).where(DeviceShare.id == share_id))

    def expire_share(self, cell: str, share_id: str, at: datetime) -> None:
        """Set a share's expiry to any time, also a past one (maintenance and tests; the API asks ahead)."""
        with self.dbs.cell_session(cell) as s:
            row = s.get(DeviceShare, share_id)
            if row is None:
                raise NotFound(f"no share {share_id}", code=ErrorCode.UNKNOWN_SHARE)
            row.expires_at = at

    def people(self, cell: str, home_id: str) -> list[str]:
        """The owner and the unexpired members and guests of a home (whom the home's notifications reach)."""
        with self.dbs.cell_session(cell) as s:
            owner = s.scalar(select(Home.owner_id).where(Home.id == home_id))
            if owner is None:
                return []
            members = s.scalars(select(HomeMember.user_id).where(
                HomeMember.home_id == home_id,
                or_(HomeMember.expires_at.is_(None), HomeMember.expires_at > utcnow()))).all()
            return [owner, *(m for m in members if m != owner)]

    def homes_of_devices(self, cell: str, dids: list[str]) -> dict[str, str]:
        """The home each of these devices is bound to (unbound ones are left out), in one query."""
        with self.dbs.cell_session(cell) as s:
            return {did: home for did, home in s.execute(select(Binding.did, Binding.home_id)
                                                         .where(Binding.did.in_(dids)))}

    def home_name(self, cell: str, home_id: str) -> str | None:
        """The name the owner gave a home (opened with the owner's key), for notifications."""
        with self.dbs.cell_session(cell) as s:
            home = s.get(Home, home_id)
            if home is None:
                return None
            return self.sealer.opener(s, cell).name(home.owner_id, "homes", home.id, home.name)

    def device_names(self, cell: str, dids: list[str]) -> dict[str, str]:
        """The names users gave bound devices, opened with each home owner's key (only for views that show them)."""
        with self.dbs.cell_session(cell) as s:
            rows = s.execute(select(Binding.did, Binding.name, Home.owner_id).join(Home, Home.id == Binding.home_id)
                             .where(Binding.did.in_(dids))).all()
            opener = self.sealer.opener(s, cell)
            return {did: opener.name(owner, "bindings", did, name) for did, name, owner in rows}
