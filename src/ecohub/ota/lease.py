"""The OTA engine's leader lease: a row in the global database that one process holds and renews.

Several processes may run an engine (`ecohub up`, every `ecohub api`); only the holder of the lease of its cells
acts. A holder that dies stops renewing and another takes over once the lease expired. Same code on SQLite and
PostgreSQL (one conditional UPDATE, or an INSERT for the first holder); holders' clocks must agree to well under
the lease time (NTP), as with any lease.
"""

from __future__ import annotations

import os
import secrets
import socket

from sqlalchemy import case, delete, update
from sqlalchemy.exc import IntegrityError

from ecohub.ota.models import EngineLease
from ecohub.store import Databases, now_ms


def lease_name(cells: list[str]) -> str:
    """The lease of the engine serving these cells."""
    return "ota-engine:" + ",".join(sorted(cells))


def holder_id() -> str:
    """This process, as a lease holder (host, pid and a random part: a pid reused after a restart is another)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """`acquire()` takes or renews the lease for `ttl_s`; it is held until then unless renewed."""

    def __init__(self, dbs: Databases, name: str, *, ttl_s: float, holder: str | None = None) -> None:
        self.dbs = dbs
        self.name = name
        self.ttl_ms = int(ttl_s * 1000)
        self.holder = holder or holder_id()

    def acquire(self) -> bool:
        """Take the lease when it is free or expired, renew it when ours; → whether we hold it now."""
        now = now_ms()
        with self.dbs.global_session() as s:
            result = s.execute(update(EngineLease).where(
                EngineLease.name == self.name,
                (EngineLease.holder == self.holder) | (EngineLease.expires_ms < now))
                .values(holder=self.holder, expires_ms=now + self.ttl_ms,
                        acquired_ms=case((EngineLease.holder == self.holder, EngineLease.acquired_ms), else_=now)))
            taken = result.rowcount  # type: ignore[attr-defined]
        if taken:
            return True
        try:
            with self.dbs.global_session() as s:
                s.add(EngineLease(name=self.name, holder=self.holder, expires_ms=now + self.ttl_ms, acquired_ms=now))
        except IntegrityError:
            return False  # someone else holds it (or took it first)
        return True

    def release(self) -> None:
        """Give the lease up at once (a clean stop): the next process need not wait for it to expire."""
        with self.dbs.global_session() as s:
            s.execute(delete(EngineLease).where(EngineLease.name == self.name, EngineLease.holder == self.holder))

    def holder_now(self) -> str | None:
        """Who holds the lease now (None: nobody, or it expired)."""
        with self.dbs.global_session() as s:
            row = s.get(EngineLease, self.name)
            return row.holder if row is not None and row.expires_ms >= now_ms() else None
