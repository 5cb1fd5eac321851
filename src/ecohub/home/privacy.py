"""Home's part of the data map: how its personal tables answer data-subject requests, and who owns which device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from ecohub.errors import EcohubError
from ecohub.home.accounts import PASSWORDS, AccountService, EmailVault, open_email
from ecohub.home.binding import BindingService
from ecohub.home.models import (
    Binding,
    DeviceShare,
    Favourite,
    Home,
    HomeMember,
    PasswordReset,
    Room,
    User,
    UserToken,
)
from ecohub.privacy.crypto import SEALED, SubjectKeys
from ecohub.privacy.registry import (
    DataRegistry,
    ExportContext,
    Needle,
    Scope,
    StoreHandler,
    SubjectDirectory,
    Transform,
)
from ecohub.store import Databases


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


CHUNK = 5000  # dids per IN list (SQLite caps bound parameters)


def device_owners(s: Session, dids: Sequence[str]) -> list[tuple[str, str]]:
    """(did, home owner) of each bound device among `dids`, in the caller's transaction (one indexed query)."""
    return [(did, owner) for did, owner in s.execute(
        select(Binding.did, Home.owner_id).join(Home, Home.id == Binding.home_id).where(Binding.did.in_(dids)))]


def bound_owners(s: Session, dids: Sequence[str]) -> list[tuple[str, int, str]]:
    """(did, bound since ms, home owner) of each bound device among `dids` (a partner's fleet: chunked)."""
    wanted = list(dids)
    return [(did, since, owner) for i in range(0, len(wanted), CHUNK) for did, since, owner in s.execute(
        select(Binding.did, Binding.bound_ms, Home.owner_id).join(Home, Home.id == Binding.home_id)
        .where(Binding.did.in_(wanted[i:i + CHUNK])))]


def scope_of(s: Session, user_id: str) -> Scope:
    """Resolve a user's homes and bound devices in their cell."""
    homes = tuple(s.scalars(select(Home.id).where(Home.owner_id == user_id)))
    devices = {did: since for did, since in s.execute(select(Binding.did, Binding.bound_ms)
                                                      .where(Binding.home_id.in_(homes)))} if homes else {}
    return Scope(user_id, homes, devices)


def _password_check(dbs: Databases) -> Any:
    def verify(cell: str, user_id: str, password: str | None) -> bool:
        """True when `password` is the account's (a stolen session token is not enough for a DSR)."""
        with dbs.cell_session(cell) as s:
            user = s.get(User, user_id)
            stored = user.password_hash if user else ""
        try:
            if not password:
                return False
            PASSWORDS.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        return True
    return verify


def needles(s: Session, cell: str, keys: SubjectKeys) -> list[tuple[str, Needle]]:
    """Every identifier of the cell's subjects: user ids, email hashes, emails (opened) and bound device ids."""
    found: list[tuple[str, Needle]] = []
    for user in s.scalars(select(User)):
        found.append((user.id, Needle(cell, user.id, "user id")))
        found.append((user.email_hash.hex(), Needle(cell, user.id, "email hash")))
        email = user.email
        if email.startswith(SEALED):
            try:
                email = open_email(keys.get(s, cell, user.id), user.id, email)
            except EcohubError:
                continue
        found.append((email.lower(), Needle(cell, user.id, "email")))
    found += [(did, Needle(cell, did, "bound device id")) for did in s.scalars(select(Binding.did))]
    return found


def _export_user(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    if ctx.subject_key is not None and row["email"].startswith(SEALED):
        row["email"] = open_email(ctx.subject_key, ctx.subject_id, row["email"])
    row["password_hash"] = "(credential: not exported)"
    return row


def _no_secret(row: dict[str, Any], _ctx: ExportContext) -> dict[str, Any]:
    row["token_hash"] = "(credential: not exported)"
    return row


def _named(table: str, id_column: str) -> Transform:
    def open_name(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:  # sealed with the owner's key
        row["name"] = ctx.opener.name(ctx.subject_id, table, row[id_column], row["name"])
        return row
    return open_name


def _share_export(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    """A share the subject made shows the invitee's address (the subject typed it); one they received does not
    (it is sealed with the sharer's key)."""
    row["email_hash"] = "(keyed hash: not exported)"
    if row["owner_id"] == ctx.subject_id:
        row["email"] = ctx.opener.name(ctx.subject_id, "device_shares", row["id"], row["email"])
    else:
        row["email"] = "(shared with you)"
    return row


def _rectifier(emails: EmailVault) -> Any:
    def rectify(s: Session, cell: str, user_id: str, email: str) -> list[str]:
        """Replace the stored email (keyed hash and sealed address)."""
        user = s.get(User, user_id)
        assert user is not None
        user.email, user.email_hash = emails.seal(s, user_id, email, cell), emails.lookup_hash(email)
        return ["email", "email_hash"]
    return rectify


def register(registry: DataRegistry, accounts: AccountService, bindings: BindingService) -> None:
    """Register home's stores (accounts, tokens, homes, rooms, members, bindings) and its subject look-ups."""
    registry.add(
        StoreHandler(_t(User), "home", lambda sc: User.id == sc.user_id, transform=_export_user,
                     rectify_email=_rectifier(accounts.emails)),
        StoreHandler(_t(UserToken), "home", lambda sc: UserToken.user_id == sc.user_id),
        StoreHandler(_t(PasswordReset), "home", lambda sc: PasswordReset.user_id == sc.user_id,
                     transform=_no_secret),
        StoreHandler(_t(Home), "home", lambda sc: Home.owner_id == sc.user_id, transform=_named("homes", "id")),
        StoreHandler(_t(Room), "home", lambda sc: sc.of_homes(Room.home_id), transform=_named("rooms", "id")),
        StoreHandler(_t(HomeMember), "home",
                     lambda sc: or_(HomeMember.user_id == sc.user_id, sc.of_homes(HomeMember.home_id))),
        StoreHandler(_t(Binding), "home", lambda sc: sc.of_homes(Binding.home_id),
                     transform=_named("bindings", "did")),
        # shares the subject made (with the invitee's e-mail, sealed with the subject's key) or received
        StoreHandler(_t(DeviceShare), "home",
                     lambda sc: or_(DeviceShare.owner_id == sc.user_id, DeviceShare.user_id == sc.user_id),
                     transform=_share_export),
        StoreHandler(_t(Favourite), "home", lambda sc: Favourite.user_id == sc.user_id),
    )
    lookups = registry.lookups
    lookups.subjects = SubjectDirectory(exists=accounts.exists, verify_password=_password_check(accounts.dbs),
                                        scope=scope_of, locate_email=accounts.locate)
    lookups.owners = bound_owners
    lookups.release = bindings.release
    lookups.needles.append(needles)
