"""Use cases of notifications: store one for the people of a home, list and mark read, prune old ones, and the
built-in ones (a device went offline and stayed so for a moment, a home was shared)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import itertools
import logging
import secrets
import threading
import time
from collections import defaultdict
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from ecohub.auth import Principal, Role
from ecohub.bus import EventBus
from ecohub.connect.events import OnlineChanged
from ecohub.errors import ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.home.events import HomeShared
from ecohub.home.homes import HomeService
from ecohub.notify.events import NotificationCreated
from ecohub.notify.messages import localized, render
from ecohub.notify.models import Notification
from ecohub.store import Databases, now_ms

log = logging.getLogger(__name__)
OFFLINE_CHUNK = 500  # devices looked up per query when many went offline at once
MAX_TITLE, MAX_BODY = 200, 2000


class Severity(StrEnum):
    """How much a notification asks for attention."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def parse_severity(raw: Any, path: str = "severity") -> Severity:
    """A severity from a document; refused naming the known ones."""
    try:
        return Severity(str(raw))
    except ValueError:
        raise InvalidInput(f"{path}: must be one of {', '.join(s.value for s in Severity)}",
                           code=ErrorCode.INVALID_RULE, path=path) from None


def view(n: Notification, locale: str | None = None) -> dict[str, Any]:
    """A notification as the API, the console and apps see it: worded in `locale` when it has a code (None: as
    stored, in English), with its `code` and `params` for clients that word it themselves."""
    doc = {"id": n.id, "kind": n.kind, "severity": n.severity, "title": n.title, "body": n.body,
           "code": n.code, "params": n.params, "home_id": n.home_id, "did": n.did, "created_ms": n.created_ms,
           "read": n.read_ms is not None, "read_ms": n.read_ms}
    return localized(doc, locale) if locale else doc


class NotificationService:
    """Notifications of users in their cell; after each stored batch a NotificationCreated per user is published."""

    def __init__(self, dbs: Databases, bus: EventBus, homes: HomeService, *, retention_days: float = 30.0,
                 offline_debounce_s: float = 30.0) -> None:
        self.dbs = dbs
        self.bus = bus
        self.homes = homes
        self.retention_days = retention_days
        self.offline_debounce_s = offline_debounce_s
        self._offline: dict[str, tuple[str, int, float]] = {}  # did → (cell, ts, monotonic when it went offline)
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self.running = False
        bus.subscribe(OnlineChanged, self._on_online)
        bus.subscribe(HomeShared, self._on_shared)

    # -- writing ----------------------------------------------------------------------------------------------------
    def notify(self, cell: str, user_ids: builtins.list[str], *, kind: str, title: str = "", body: str = "",
               code: str | None = None, params: dict[str, Any] | None = None,
               severity: Severity | str = Severity.INFO, home_id: str | None = None,
               did: str | None = None) -> builtins.list[dict[str, Any]]:
        """Store one notification for each user; → what was stored (the bus hears of each after commit).

        A `code` of ecohub.notify.messages with its `params` is stored with its English wording as title and body
        (each reader gets it in their language); without one, `title` and `body` are free text (a rule's message).
        """
        words = render(code, params)
        if code is not None and words is None:
            raise InvalidInput(f"unknown notification code {code!r}", code=ErrorCode.INVALID_INPUT)
        if words is not None:
            title, body = words
        sev = Severity(severity)
        now = now_ms()
        rows = [Notification(id="ntf_" + secrets.token_hex(10), user_id=u, kind=kind, severity=sev.value,
                             title=title[:MAX_TITLE], body=body[:MAX_BODY], code=code, params=params,
                             home_id=home_id, did=did, created_ms=now, read_ms=None) for u in dict.fromkeys(user_ids)]
        if not rows:
            return []
        with self.dbs.cell_session(cell) as s:
            s.add_all(rows)
            views = [view(n) for n in rows]
        locales = self.homes.accounts.locales(cell, [n.user_id for n in rows]) if code else {}
        self.bus.publish([NotificationCreated(cell, n.user_id, did, v, locales.get(n.user_id),
                                              localized(v, locales.get(n.user_id)))
                          for n, v in zip(rows, views, strict=True)])
        return views

    def notify_home(self, cell: str, home_id: str, **kw: Any) -> builtins.list[dict[str, Any]]:
        """Notify everyone the home is shared with (owner, members, guests)."""
        return self.notify(cell, self.homes.people(cell, home_id), home_id=home_id, **kw)

    # -- reading ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _cell(p: Principal) -> str:
        if p.role != Role.USER or not p.cell:
            raise Forbidden("notifications belong to user accounts (apps receive them by push)",
                            code=ErrorCode.WRONG_ROLE)
        return p.cell

    def list(self, p: Principal, *, limit: int = 50, after: tuple[int, str] | None = None,
             unread: bool = False, locale: str | None = None) -> builtins.list[dict[str, Any]]:
        """The caller's notifications, newest first, worded in `locale`; `after` is the (created_ms, id) of the last
        one seen."""
        cell = self._cell(p)
        q = select(Notification).where(Notification.user_id == p.subject)
        if unread:
            q = q.where(Notification.read_ms.is_(None))
        if after is not None:
            ts, nid = after
            q = q.where(or_(Notification.created_ms < ts, and_(Notification.created_ms == ts, Notification.id < nid)))
        q = q.order_by(Notification.created_ms.desc(), Notification.id.desc()).limit(limit)
        with self.dbs.cell_session(cell) as s:
            return [view(n, locale) for n in s.scalars(q)]

    def unread_count(self, p: Principal) -> int:
        """How many of the caller's notifications are unread."""
        with self.dbs.cell_session(self._cell(p)) as s:
            return int(s.scalar(select(func.count()).select_from(Notification).where(
                Notification.user_id == p.subject, Notification.read_ms.is_(None))) or 0)

    def read(self, p: Principal, notification_id: str, *, locale: str | None = None) -> dict[str, Any]:
        """Mark one of the caller's notifications read (again is fine); others' are not revealed."""
        with self.dbs.cell_session(self._cell(p)) as s:
            n = s.get(Notification, notification_id)
            if n is None or n.user_id != p.subject:
                raise NotFound(f"no notification {notification_id}", code=ErrorCode.UNKNOWN_NOTIFICATION)
            n.read_ms = n.read_ms or now_ms()
            return view(n, locale)

    def read_all(self, p: Principal) -> int:
        """Mark every unread notification of the caller read; → how many."""
        with self.dbs.cell_session(self._cell(p)) as s:
            return int(s.execute(update(Notification).where(  # type: ignore[attr-defined]
                Notification.user_id == p.subject, Notification.read_ms.is_(None)).values(read_ms=now_ms())).rowcount)

    def prune(self, *, now: int | None = None) -> dict[str, int]:
        """Delete notifications older than the retention, in every cell; → rows deleted per cell."""
        before = (now if now is not None else now_ms()) - int(self.retention_days * 86_400_000)
        out = {}
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                out[cell] = int(s.execute(delete(Notification).where(  # type: ignore[attr-defined]
                    Notification.created_ms < before)).rowcount)
        return out

    # -- built-in notifications -------------------------------------------------------------------------------------
    def _on_online(self, e: OnlineChanged) -> None:
        """Remember a device that went offline; one back online within the debounce is forgotten (a blip)."""
        with self._lock:
            if e.online:
                self._offline.pop(e.did, None)
                return
            first = not self._offline  # else the loop already waits for an earlier one
            self._offline.setdefault(e.did, (e.cell, e.ts, time.monotonic()))
        if first and self.running:
            self._wake.set()

    def _on_shared(self, e: HomeShared) -> None:
        """Tell the invitee they have the home now, and the owner that the share took effect."""
        home = self.homes.home_name(e.cell, e.home_id) or e.home_id
        params = {"role": str(e.role), "home": home}
        self.notify(e.cell, [e.user_id], kind="share", code="share.received", params=params, home_id=e.home_id)
        self.notify(e.cell, [e.by], kind="share", code="share.granted", params=params, home_id=e.home_id)

    def offline_due(self) -> int:
        """Notify the people of each device offline for longer than the debounce; → notifications stored.

        A region's power cut takes thousands of devices offline at once: they are looked up a chunk at a time (one
        query for their homes, one for their names), not one query per device, and only the due ones are read (the
        waiting devices are in the order they went offline)."""
        cutoff = time.monotonic() - self.offline_debounce_s
        with self._lock:
            due = list(itertools.takewhile(lambda item: item[1][2] <= cutoff, self._offline.items()))
            for did, _ in due:
                del self._offline[did]
        by_cell: dict[str, list[str]] = defaultdict(list)
        for did, (cell, _ts, _) in due:
            if cell in self.dbs.cells:
                by_cell[cell].append(did)
        stored = 0
        for cell, dids in by_cell.items():
            for at in range(0, len(dids), OFFLINE_CHUNK):
                chunk = dids[at:at + OFFLINE_CHUNK]
                homes = self.homes.homes_of_devices(cell, chunk)
                if not homes:  # not bound to anyone's home: nobody to tell
                    continue
                names = self.homes.device_names(cell, list(homes))
                for did in chunk:
                    if did in homes:
                        stored += len(self.notify_home(cell, homes[did], kind="offline", severity=Severity.WARNING,
                                                       did=did, code="device.offline",
                                                       params={"device": names.get(did) or did}))
        return stored

    async def run(self) -> None:
        """The hub's loop that turns offline devices into notifications after the debounce, until cancelled."""
        self.running = True
        try:
            while True:
                try:
                    await asyncio.to_thread(self.offline_due)
                except Exception:  # a failing round is logged and retried, never the end of notifications
                    log.exception("offline notifications failed")
                with self._lock:
                    first = next(iter(self._offline.values()), None)  # the longest offline comes first
                wait = max(0.05, first[2] + self.offline_debounce_s - time.monotonic()) if first else 60.0
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            self.running = False
