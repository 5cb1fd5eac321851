"""Favourite devices of an account: stored in the user's cell, the same on every browser and app."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select

from ecohub.auth import Principal, Role
from ecohub.errors import Conflict, EcohubError, ErrorCode, Forbidden
from ecohub.home.domain import HomeRole
from ecohub.home.homes import HomeService
from ecohub.home.models import Favourite
from ecohub.store import Databases, now_ms
from ecohub.store.upsert import insert_new

MAX_FAVOURITES = 500  # a guard against a runaway client, far above any home


class FavouriteService:
    """Mark and unmark favourites; list those of devices the caller can still see (an unbound one drops out)."""

    def __init__(self, dbs: Databases, homes: HomeService) -> None:
        self.dbs = dbs
        self.homes = homes

    def _cell(self, p: Principal) -> str:
        if p.role != Role.USER or not p.cell:
            raise Forbidden("favourites belong to user accounts", code=ErrorCode.WRONG_ROLE)
        return p.cell

    def list(self, p: Principal) -> list[str]:
        """The caller's favourite devices that they may still see, in the order they were marked."""
        with self.dbs.cell_session(self._cell(p)) as s:
            dids = list(s.scalars(select(Favourite.did).where(Favourite.user_id == p.subject)
                                  .order_by(Favourite.created_ms, Favourite.did)))
        return [did for did in dids if self._sees(p, did)]

    def set(self, p: Principal, did: str, on: bool) -> bool:
        """Mark (`on`) or unmark one device; marking needs access to it, unmarking a favourite does not (a device
        that left the home can still be unmarked), while anyone else's device stays unknown; → on."""
        cell = self._cell(p)
        gone = 0
        if on:
            self.homes.device_access(p, did, HomeRole.GUEST)  # refused like any other use of the device
        with self.dbs.cell_session(cell) as s:
            if on:
                count = len(s.scalars(select(Favourite.did).where(Favourite.user_id == p.subject)).all())
                if count >= MAX_FAVOURITES:
                    raise Conflict(f"at most {MAX_FAVOURITES} favourites", code=ErrorCode.CONFLICT)
                insert_new(s, Favourite, [{"user_id": p.subject, "did": did, "created_ms": now_ms()}],
                           keys=["user_id", "did"], returning=[Favourite.did])  # marked twice: still one
            else:
                gone = s.execute(delete(Favourite).where(  # type: ignore[attr-defined]
                    Favourite.user_id == p.subject, Favourite.did == did)).rowcount
        if not on and not gone:  # not a favourite: say so only about a device the caller may see
            self.homes.device_access(p, did, HomeRole.GUEST)
        return on

    def adopt(self, p: Principal, dids: Iterable[str]) -> None:
        """Take over favourites a browser kept before they were stored per account (those the caller may see)."""
        for did in dids:
            if self._sees(p, did):
                self.set(p, did, True)

    def _sees(self, p: Principal, did: str) -> bool:
        try:
            self.homes.device_access(p, did, HomeRole.GUEST)
        except EcohubError:
            return False
        return True
