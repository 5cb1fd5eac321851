"""Use cases of the twin: apply reported values in the ingest unit of work, read a twin."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from ecohub.privacy.sealing import PayloadSealer, Seal, seal_fields, twin_aad
from ecohub.store import Databases
from ecohub.store.upsert import RawStatement, json_text, upsert
from ecohub.twin.domain import DesiredState
from ecohub.twin.models import Twin, TwinProperty

MAX_ITEMS = 64  # items per set_properties: a command's items keep their order within its `desired_seq` block
Report = tuple[str, str, Any, int, int | None, int]  # (did, key, value, device ts, message id, arrival seq)


def _props() -> Table:
    return TwinProperty.__table__  # type: ignore[return-value]


def replaces(seq: int, prev_seq: int | None) -> bool:
    """Whether a reported value replaces the previous one: the later arrival at the broker wins. A device's messages
    arrive in the order it sent them, also after a reboot restarted its message ids; several ingest workers
    committing in any order cannot let an older value win."""
    return prev_seq is None or seq >= prev_seq


def _upsert_reported(insert_: Callable[[Any], Any]) -> Any:
    t = _props()
    stmt = insert_(t)
    ex = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["did", "key"],
        set_={"value": ex.value, "ts": ex.ts, "msg_id": ex.msg_id, "seq": ex.seq, "subject": ex.subject,
              "sealed": ex.sealed},
        # the same rule as `replaces`, in SQL against the stored row (a desired-only row has no seq yet)
        where=t.c.seq.is_(None) | (ex.seq >= t.c.seq))


def _bump_versions(insert_: Callable[[Any], Any]) -> Any:
    tw = Twin.__table__
    stmt = insert_(tw)
    return stmt.on_conflict_do_update(index_elements=["did"], set_={"version": tw.c.version + stmt.excluded.version,
                                                                      "updated_ms": stmt.excluded.updated_ms})


# the ingest hot path runs these on the DB-API cursor (one executemany each per batch)
_UPSERT_REPORTED = RawStatement(_upsert_reported, ["did", "key", "value", "ts", "msg_id", "seq", "subject", "sealed"])
_BUMP_VERSIONS = RawStatement(_bump_versions, ["did", "version", "updated_ms"])


class TwinService:
    """Last known state per device; writes happen inside the caller's transaction (batched).

    A bound device's reported values are sealed with its owner's key (see privacy.sealing); desired values
    of pending commands stay readable until the device reports them.
    """

    def __init__(self, dbs: Databases, sealer: PayloadSealer) -> None:
        self.dbs = dbs
        self.sealer = sealer

    @staticmethod
    def apply_reports(session: Session, reports: Iterable[Report], bumps: dict[str, int], now_ms: int,
                      seals: Mapping[str, Seal]) -> None:
        """Upsert (did, key, value, ts, msg_id, seq) rows and bump each twin's version; `seals` by did.

        The later arrival at the broker wins (`replaces`), within one batch as across batches and workers.
        """
        latest: dict[tuple[str, str], tuple[Any, int, int | None, int]] = {}
        for did, key, value, ts, msg_id, seq in reports:
            prev = latest.get((did, key))
            if prev is None or replaces(seq, prev[3]):
                latest[(did, key)] = (value, ts, msg_id, seq)
        rows = []
        # in key order, as the version bumps: two workers upserting the same twins lock them in one order (no
        # deadlock on PostgreSQL)
        for (d, k), (v, ts, m, seq) in sorted(latest.items(), key=lambda kv: kv[0]):
            seal = seals.get(d)
            value, subject, sealed = seal_fields(seal, v, twin_aad(d, k)) if seal is not None else (v, None, None)
            rows.append({"did": d, "key": k, "value": json_text(value), "ts": ts, "msg_id": m, "seq": seq,
                         "subject": subject, "sealed": sealed})
        _UPSERT_REPORTED.run(session, rows)
        _BUMP_VERSIONS.run(session, [{"did": d, "version": bumps[d], "updated_ms": now_ms} for d in sorted(bumps)])

    @staticmethod
    def forget_arrival_order(session: Session) -> None:
        """The broker's stream was created anew and numbers from 1 again: the stored order means nothing now, and
        the next message of each device (and key) wins, as on a new twin."""
        session.execute(update(TwinProperty).where(TwinProperty.seq.is_not(None)).values(seq=None))
        session.execute(update(Twin).where(Twin.state_seq.is_not(None)).values(state_seq=None))

    @staticmethod
    def state_seqs(session: Session, dids: Iterable[str]) -> dict[str, int | None]:
        """The arrival order of the state message each twin shows (devices without a twin are left out)."""
        tw = Twin.__table__
        out: dict[str, int | None] = {}
        todo = sorted(set(dids))
        for i in range(0, len(todo), 5000):
            out.update({d: q for d, q in session.execute(select(tw.c.did, tw.c.state_seq)
                                                         .where(tw.c.did.in_(todo[i:i + 5000])))})
        return out

    @staticmethod
    def apply_online(session: Session, changes: dict[str, tuple[bool, int, int, str | None]]) -> None:
        """Record each device's newest state message: did → (online, ts, its arrival order, the firmware version it
        names or None). The later arrival at the broker wins (`replaces`), as for reported values: a state message
        redelivered or written late by another worker never overwrites a newer one, so a device that came back on a
        new firmware is not shown on its old one again."""
        tw = Twin.__table__
        rows = [{"did": d, "online": online, "online_ms": ts, "state_seq": seq, "firmware_version": fw,
                 "version": 1, "updated_ms": ts}
                for d, (online, ts, seq, fw) in sorted(changes.items())]
        upsert(session, tw, rows, keys=["did"],
               update={"online": lambda ex: ex.online, "online_ms": lambda ex: ex.online_ms,
                       "state_seq": lambda ex: ex.state_seq,
                       # an offline state names no version: the twin keeps the one the device last said it runs
                       "firmware_version": lambda ex: func.coalesce(ex.firmware_version, tw.c.firmware_version),
                       "version": lambda ex: tw.c.version + 1, "updated_ms": lambda ex: ex.updated_ms},
               where=lambda ex: tw.c.state_seq.is_(None) | (ex.state_seq >= tw.c.state_seq))

    def firmware_versions(self, cell: str, dids: list[str]) -> dict[str, str | None]:
        """The firmware version each of `dids` last said it runs (None when it never said)."""
        out: dict[str, str | None] = dict.fromkeys(dids)
        with self.dbs.cell_session(cell) as s:
            for i in range(0, len(dids), 5000):
                part = dids[i:i + 5000]
                rows = s.execute(select(Twin.did, Twin.firmware_version).where(Twin.did.in_(part)))
                out.update({d: v for d, v in rows})
        return out

    def online(self, cell: str, dids: list[str]) -> set[str]:
        """Which of `dids` the twin says are online now."""
        out: set[str] = set()
        with self.dbs.cell_session(cell) as s:
            for i in range(0, len(dids), 5000):
                out.update(s.scalars(select(Twin.did).where(Twin.did.in_(dids[i:i + 5000]), Twin.online.is_(True))))
        return out

    @staticmethod
    def set_desired(session: Session, did: str, values: dict[str, Any], now_ms: int, *, order: int,
                    sent_by: int | None = None) -> None:
        """Record the desired values of a set_properties (`values` in the command's order; `order` increases with
        each command, the command id). A newer value of a key replaces an older one that was not delivered yet.

        `sent_by` names the command that carries them to a connected device now; without it they stay pending
        until the device comes back (`claim_pending`)."""
        t = TwinProperty.__table__
        state = DesiredState.SENT if sent_by is not None else DesiredState.PENDING
        rows = [{"did": did, "key": k, "desired": v, "desired_ts": now_ms, "desired_state": state,
                 "desired_code": None, "desired_cmd": sent_by, "desired_seq": order * MAX_ITEMS + i,
                 "desired_sent_ms": now_ms if sent_by is not None else None}
                for i, (k, v) in enumerate(values.items())]
        cols = ("desired", "desired_ts", "desired_state", "desired_code", "desired_cmd", "desired_seq",
                "desired_sent_ms")
        upsert(session, t, rows, keys=["did", "key"], update={c: (lambda ex, c=c: getattr(ex, c)) for c in cols})

    @staticmethod
    def claim_pending(session: Session, did: str, command_id: int, now_ms: int, *,
                      unconfirmed: bool = True) -> list[tuple[str, Any]]:
        """Take the device's undelivered desired values for command `command_id`, in the order they were set.

        One UPDATE moves them from pending (and unconfirmed, on a reconnect) to sent under this command: of several
        hub processes or workers racing for one device, only the one whose UPDATE matched delivers each value."""
        states = [DesiredState.PENDING, DesiredState.UNCONFIRMED] if unconfirmed else [DesiredState.PENDING]
        t = _props()
        session.execute(update(t).where(t.c.did == did, t.c.desired_state.in_(states))
                        .values(desired_state=DesiredState.SENT, desired_cmd=command_id, desired_sent_ms=now_ms))
        return [(k, v) for k, v in session.execute(
            select(t.c.key, t.c.desired).where(t.c.did == did, t.c.desired_cmd == command_id,
                                               t.c.desired_state == DesiredState.SENT).order_by(t.c.desired_seq))]

    @staticmethod
    def record_delivery(session: Session, did: str, command_id: int, codes: dict[str, int] | None) -> None:
        """The device's answer to command `command_id`: per key its code (0 acknowledged, else failed); None when
        it did not answer (the values are sent again on its next reconnect). A value set anew meanwhile is not
        touched: it belongs to no command any more."""
        t = _props()
        mine = (t.c.did == did) & (t.c.desired_cmd == command_id) & (t.c.desired_state == DesiredState.SENT)
        if codes is None:
            session.execute(update(t).where(mine).values(desired_state=DesiredState.UNCONFIRMED))
            return
        for key, code in codes.items():
            state = DesiredState.ACKNOWLEDGED if code == 0 else DesiredState.FAILED
            session.execute(update(t).where(mine, t.c.key == key).values(desired_state=state, desired_code=code))

    @staticmethod
    def with_undelivered(session: Session, dids: list[str]) -> list[str]:
        """Those of `dids` that have desired values not delivered yet (pending or unconfirmed)."""
        t = _props()
        found: set[str] = set()
        for i in range(0, len(dids), 500):
            found.update(session.scalars(select(t.c.did).where(
                t.c.did.in_(dids[i:i + 500]),
                t.c.desired_state.in_([DesiredState.PENDING, DesiredState.UNCONFIRMED])).distinct()))
        return sorted(found)

    @staticmethod
    def drop_undelivered(session: Session, did: str) -> None:
        """Forget the desired values not delivered yet (the device changed hands: the old owner's wishes must not
        reach it)."""
        t = _props()
        session.execute(update(t).where(t.c.did == did, t.c.desired_state.in_(
            [DesiredState.PENDING, DesiredState.UNCONFIRMED, DesiredState.SENT])).values(desired_state=None))

    @staticmethod
    def pending_online(session: Session, *, stale_before_ms: int, limit: int = 1000) -> list[str]:
        """Devices the twin shows online that have pending desired values; values left `sent` since before
        `stale_before_ms` (the process that claimed them died) become pending again first."""
        t = _props()
        session.execute(update(t).where(t.c.desired_state == DesiredState.SENT, t.c.desired_sent_ms < stale_before_ms)
                        .values(desired_state=DesiredState.PENDING))
        return list(session.scalars(
            select(t.c.did).join(Twin.__table__, Twin.did == t.c.did)
            .where(t.c.desired_state == DesiredState.PENDING, Twin.online.is_(True))
            .group_by(t.c.did).limit(limit)))

    @staticmethod
    def is_offline(session: Session, did: str) -> bool:
        """Whether the device's last state message (retained state or will) said offline; a device never seen
        yet is not taken for offline (its first state message may still be on its way)."""
        return session.scalar(select(Twin.online).where(Twin.did == did)) is False

    def summaries(self, cell: str, dids: list[str]) -> dict[str, dict[str, Any]]:
        """Online state, version and number of reported properties per device, in two queries, no values opened."""
        with self.dbs.cell_session(cell) as s:
            twins = {t.did: t for t in s.scalars(select(Twin).where(Twin.did.in_(dids)))}
            counts = dict(s.execute(select(TwinProperty.did, func.count()).where(
                TwinProperty.did.in_(dids), TwinProperty.ts.is_not(None)).group_by(TwinProperty.did)).all())
        return {did: {"online": bool(t.online) if (t := twins.get(did)) and t.online is not None else False,
                      "version": t.version if t else 0, "properties": int(counts.get(did, 0))} for did in dids}

    def get(self, cell: str, did: str) -> dict[str, Any]:
        """The twin as the REST API returns it: online, properties {key: {value, ts}} (reported), version; desired
        {key: {value, ts, state, code, command_id}} and the delta {key: {value, ts}} where desired ≠ reported."""
        reported: dict[str, tuple[bool, Any]] = {}
        with self.dbs.cell_session(cell) as s:
            # one statement, so one snapshot: two reads could straddle an ingest commit (READ COMMITTED on
            # PostgreSQL) and show values newer than the version (a CI run read 42 with version 1)
            rows = s.execute(select(TwinProperty, Twin).outerjoin(Twin, Twin.did == TwinProperty.did)
                             .where(TwinProperty.did == did)).all()
            props = [p for p, _ in rows]
            twin = rows[0][1] if rows else s.get(Twin, did)
            opener = self.sealer.opener(s, cell)
            for p in props:
                reported[p.key] = opener.value(p.value, p.subject, p.sealed, twin_aad(did, p.key))
        properties: dict[str, Any] = {}
        pending: dict[str, Any] = {}
        desired: dict[str, Any] = {}
        delta: dict[str, Any] = {}
        for p in sorted(props, key=lambda p: tuple(int(x) for x in p.key.split("."))):
            readable, value = reported[p.key]
            if p.ts is not None and readable:
                properties[p.key] = {"value": value, "ts": p.ts}
            if p.desired_ts is None:
                continue
            if (p.ts is None or p.desired_ts > p.ts) and p.desired != value:
                pending[p.key] = {"value": p.desired, "ts": p.desired_ts}
            desired[p.key] = {"value": p.desired, "ts": p.desired_ts, "state": p.desired_state,
                              "code": p.desired_code, "command_id": p.desired_cmd}
            if p.ts is None or not readable or p.desired != value:
                delta[p.key] = {"value": p.desired, "ts": p.desired_ts}
        return {
            "did": did,
            "online": bool(twin.online) if twin and twin.online is not None else False,
            "online_ts": twin.online_ms if twin else None,
            "properties": properties,
            "pending": pending,
            "desired": desired,
            "delta": delta,
            "version": twin.version if twin else 0,
            "firmware_version": twin.firmware_version if twin else None,
            "updated_ts": twin.updated_ms if twin else None,
        }
