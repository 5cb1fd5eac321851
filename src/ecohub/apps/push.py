"""Signed push to apps: webhook subscriptions per grant, a persistent delivery queue in the cell database fed from
the outbox ingest writes in its own transaction, retries with exponential backoff and jitter, a dead-letter list,
disabling after failing for too long, and the SSRF guard when a URL is saved and again before each send. Headers and
signature follow Standard Webhooks."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, Text, bindparam, case, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ecohub.apps import outbox
from ecohub.apps.batches import Claimed, Post, Queued, group
from ecohub.apps.domain import (
    EVENT_TYPES,
    NOTIFICATION_SCOPE,
    backoff_s,
    check_batch_max,
    message_ids,
    new_webhook_secret,
    sign_webhook,
)
from ecohub.apps.grants import GrantService
from ecohub.apps.models import AppGrant, AppGrantDevice, WebhookDelivery, WebhookSubscription
from ecohub.apps.outbox import Change, Target
from ecohub.apps.quota import Quotas
from ecohub.apps.sender import Sender, origin
from ecohub.auth import Principal, Role, Scope, check_scope
from ecohub.bus import EventBus
from ecohub.connect.events import EventReported, OnlineChanged, PropertiesReported
from ecohub.errors import EcohubError, ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.netguard import UrlPolicy
from ecohub.notify.events import NotificationCreated
from ecohub.store import Databases, aware, utcnow

log = logging.getLogger(__name__)
QUEUE: Table = WebhookDelivery.__table__  # type: ignore[assignment]
HOOKS: Table = WebhookSubscription.__table__  # type: ignore[assignment]
MAX_WEBHOOKS_PER_GRANT = 10


@dataclass(frozen=True, slots=True)
class PushPolicy:
    """How hard the hub tries: attempts per message, backoff, and how long an endpoint may fail before it is
    disabled (Standard Webhooks practice: days, so an outage of minutes loses nothing)."""

    max_attempts: int = 12
    base_s: float = 1.0
    cap_s: float = 3600.0
    disable_after_s: float = 3 * 24 * 3600.0
    timeout_s: float = 5.0
    batch: int = 500  # POSTs per round at the most
    batch_rows: int = 5000  # queued messages claimed per round at the most (for subscriptions that batch)
    fan_out_batch: int = 2000  # outbox rows turned into messages per transaction at the most …
    fan_out_rows: int = 5000  # … and messages queued per transaction (short write transactions: on SQLite ingest
    # waits for them)
    concurrency: int = 32
    round_s: float = 0.02  # a busy loop starts a round at most this often: a trickle of messages goes in fewer,
    # fuller rounds (and batches) rather than a round of four transactions for each message


def _now_ms() -> int:
    return int(time.time() * 1000)


class PushService:
    """Subscriptions, the fan-out of device changes into the queue, and the delivery loop."""

    def __init__(self, dbs: Databases, bus: EventBus, grants: GrantService, quotas: Quotas, *,
                 url_policy: UrlPolicy, policy: PushPolicy | None = None) -> None:
        self.dbs = dbs
        self.grants = grants
        self.quotas = quotas
        self.url_policy = url_policy
        self.policy = policy or PushPolicy()
        self._targets: dict[str, dict[str, list[Target]]] = {}  # cell → did → targets
        self._loaded_at: dict[str, float] = {}
        self._width: dict[str, int] = {}  # cell → most subscriptions of one device
        self._widest: dict[str, tuple[float, int]] = {}  # cell → (loaded at, largest batch_max of its webhooks)
        self._buffer: list[tuple[str, str, dict[str, Any]]] = []  # notifications: (cell, "user:<id>|<did>", data)
        self._wake = asyncio.Event()
        self.delivered = 0
        self.failed_attempts = 0
        self.queueing = False  # set while run() drains the notification buffer in this process
        for kind in (PropertiesReported, EventReported, OnlineChanged):  # already in the outbox: only a wake-up
            bus.subscribe(kind, self._on_device_change)
        bus.subscribe(NotificationCreated, self._on_notification)
        grants.on_revoked.append(self.drop_grant)

    # -- subscriptions --------------------------------------------------------------------------------------------
    def subscribe(self, p: Principal, app_id: str, *, url: str, events: list[str] | None = None,
                  batch_max: int = 1) -> dict[str, Any]:
        """A webhook for the caller's grant (an app token of this app, with devices:read); the signing secret is
        returned once. The URL must be public (checked now and before each send). `batch_max` > 1: up to that many
        queued messages go in one POST (`{"type": "batch", "events": [...]}`); 1: one message per POST."""
        grant_id = self._grant_of(p, app_id)
        batch_max = check_batch_max(batch_max)
        kinds = list(events or EVENT_TYPES)
        bad = [e for e in kinds if e not in EVENT_TYPES]
        if bad:
            raise InvalidInput(f"unknown event type {bad[0]!r} (known: {', '.join(EVENT_TYPES)})",
                               code=ErrorCode.INVALID_EVENT_TYPE)
        if len(url) > 500:
            raise InvalidInput("a webhook URL has at most 500 characters", code=ErrorCode.UNSAFE_URL)
        self.url_policy.check(url)
        secret = new_webhook_secret()
        cell = p.cell or ""
        with self.dbs.cell_session(cell) as s:
            live = s.scalars(select(WebhookSubscription.id).where(WebhookSubscription.grant_id == grant_id,
                                                                  WebhookSubscription.status == "active")).all()
            if len(live) >= MAX_WEBHOOKS_PER_GRANT:
                raise InvalidInput(f"at most {MAX_WEBHOOKS_PER_GRANT} webhooks per grant", code=ErrorCode.INVALID_COUNT)
            hook = WebhookSubscription(id="wh_" + secrets.token_hex(10), app_id=app_id, grant_id=grant_id, url=url,
                                       secret=secret, events=kinds, batch_max=batch_max, status="active", failures=0)
            s.add(hook)
        self.invalidate(cell)
        return {"webhook_id": hook.id, "url": url, "events": kinds, "batch_max": batch_max, "status": "active",
                "secret": secret}

    def list(self, p: Principal, app_id: str) -> builtins.list[dict[str, Any]]:
        """The caller's grant's webhooks (never their secrets)."""
        grant_id = self._grant_of(p, app_id)
        with self.dbs.cell_session(p.cell or "") as s:
            rows = s.scalars(select(WebhookSubscription).where(WebhookSubscription.grant_id == grant_id)).all()
            return [_hook_view(h) for h in rows]

    def delete(self, p: Principal, app_id: str, webhook_id: str) -> None:
        """Remove a webhook and its queue."""
        hook = self._hook(p, app_id, webhook_id)
        with self.dbs.cell_session(p.cell or "") as s:
            row = s.get(WebhookSubscription, hook["webhook_id"])
            s.delete(row)
        self.invalidate(p.cell or "")

    def dead_letters(self, p: Principal, app_id: str, webhook_id: str, *,
                     limit: int = 100) -> builtins.list[dict[str, Any]]:
        """Messages the hub gave up on (or that the daily quota refused), newest first."""
        self._hook(p, app_id, webhook_id)
        with self.dbs.cell_session(p.cell or "") as s:
            rows = s.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id,
                                                           WebhookDelivery.status == "dead")
                             .order_by(WebhookDelivery.created_ms.desc()).limit(limit)).all()
            return [{"message_id": r.id, "type": r.event_type, "did": r.did, "attempts": r.attempts,
                     "last_error": r.last_error, "created_ms": r.created_ms, "payload": r.payload} for r in rows]

    def enable(self, p: Principal, app_id: str, webhook_id: str) -> dict[str, Any]:
        """Re-enable a disabled webhook (after the endpoint is fixed); its URL is checked again."""
        hook = self._hook(p, app_id, webhook_id)
        self.url_policy.check(hook["url"])
        with self.dbs.cell_session(p.cell or "") as s:
            row = s.get(WebhookSubscription, webhook_id)
            assert row is not None
            row.status, row.failures, row.failing_since_ms, row.disabled_at, row.disabled_reason = (
                "active", 0, None, None, None)
            view = _hook_view(row)
        self.invalidate(p.cell or "")
        return view

    def _grant_of(self, p: Principal, app_id: str) -> str:
        if p.role != Role.APP or p.app_id != app_id or not p.grant_id:
            raise Forbidden("webhooks are managed with an access token of this app (they follow the user's grant)",
                            code=ErrorCode.NOT_YOUR_APP)
        check_scope(p, Scope.DEVICES_READ)
        return p.grant_id

    def _hook(self, p: Principal, app_id: str, webhook_id: str) -> dict[str, Any]:
        grant_id = self._grant_of(p, app_id)
        with self.dbs.cell_session(p.cell or "") as s:
            row = s.get(WebhookSubscription, webhook_id)
            if row is None or row.grant_id != grant_id:
                raise NotFound(f"no webhook {webhook_id!r}", code=ErrorCode.UNKNOWN_WEBHOOK)
            return _hook_view(row)

    def drop_grant(self, cell: str, grant_id: str) -> None:
        """A user withdrew an app's access: its webhooks stop and nothing still queued for them is sent."""
        with self.dbs.cell_session(cell) as s:
            hooks = list(s.scalars(select(WebhookSubscription.id).where(WebhookSubscription.grant_id == grant_id)))
            if hooks:
                s.execute(update(WebhookSubscription).where(WebhookSubscription.id.in_(hooks))
                          .values(status="revoked", disabled_at=utcnow(), disabled_reason="the user withdrew access"))
                s.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id.in_(hooks),
                                                        WebhookDelivery.status == "pending"))
        self.invalidate(cell)

    # -- fan-out --------------------------------------------------------------------------------------------------
    def invalidate(self, cell: str) -> None:
        """Forget the cached subscriptions of a cell (reloaded on the next event)."""
        self._loaded_at.pop(cell, None)
        self._widest.pop(cell, None)

    def _targets_of(self, cell: str, session: Session | None = None) -> dict[str, builtins.list[Target]]:
        if time.monotonic() - self._loaded_at.get(cell, -1e9) > 5.0:  # other processes' changes within 5 s
            if session is None:
                with self.dbs.cell_session(cell) as s:
                    self._load_targets(cell, s)
            else:
                self._load_targets(cell, session)
        return self._targets.get(cell, {})

    def _load_targets(self, cell: str, s: Session) -> None:
        targets: dict[str, builtins.list[Target]] = defaultdict(list)
        for did, hook_id, app_id, events in s.execute(
                select(AppGrantDevice.did, WebhookSubscription.id, WebhookSubscription.app_id,
                       WebhookSubscription.events)
                .join(WebhookSubscription, WebhookSubscription.grant_id == AppGrantDevice.grant_id)
                .join(AppGrant, AppGrant.id == AppGrantDevice.grant_id)
                .where(WebhookSubscription.status == "active", AppGrant.revoked_at.is_(None))):
            targets[did].append(Target(hook_id, app_id, frozenset(events)))
        self._targets[cell] = dict(targets)
        self._width[cell] = max(map(len, targets.values()), default=1)
        self._loaded_at[cell] = time.monotonic()

    def stage(self, s: Session, cell: str, events: builtins.list[Any]) -> None:
        """Called by ingest inside its batch transaction: the changes some app's webhook wants go into the outbox,
        committed with the changes themselves (a crash after the commit loses no push). Costs one INSERT per batch
        with subscribed devices, nothing without."""
        if cell in self.dbs.cells:
            outbox.stage(s, self._targets_of(cell, s), events, _now_ms())

    def _active(self, app_id: str) -> bool:
        client = self.quotas.client(app_id)
        return client is not None and client.active

    def _on_device_change(self, _e: object) -> None:
        self._wake.set()  # this process committed a change: fan it out now rather than at the next poll

    def _on_notification(self, e: NotificationCreated) -> None:
        if not self.queueing:  # no loop in this process (the CLI, a test's services): nothing would drain it
            return
        # keyed by the user, not a device: "user:<id>|<did or empty>"; worded in the user's account language, with
        # the code and params for an app that words it itself
        payload = {**(e.localized or e.notification), "locale": e.locale or "en"}
        self._buffer.append((e.cell, f"user:{e.user_id}|{e.did or ''}", payload))
        self._wake.set()

    def _user_targets(self, cell: str, user_id: str, did: str | None) -> builtins.list[Target]:
        """Webhooks wanting the user's notifications: live grants of that user with the notification scope and,
        when the notification names a device, that device granted (an app learns nothing of other devices)."""
        with self.dbs.cell_session(cell) as s:
            q = (select(WebhookSubscription, AppGrant.scopes)
                 .join(AppGrant, AppGrant.id == WebhookSubscription.grant_id)
                 .where(AppGrant.user_id == user_id, AppGrant.revoked_at.is_(None),
                        WebhookSubscription.status == "active"))
            if did:
                q = q.where(AppGrant.id.in_(select(AppGrantDevice.grant_id).where(AppGrantDevice.did == did)))
            return [Target(h.id, h.app_id, frozenset(h.events)) for h, scopes in s.execute(q)
                    if NOTIFICATION_SCOPE.value in (scopes or ())]

    def flush(self) -> int:
        """Write buffered notifications into the queue of every subscription that wants them; → rows queued."""
        items, self._buffer = self._buffer, []
        by_cell: dict[str, builtins.list[tuple[Change, builtins.list[Target]]]] = defaultdict(list)
        now = _now_ms()
        for cell, key, data in items:
            if cell in self.dbs.cells:
                user_id, _, did = key.removeprefix("user:").partition("|")
                by_cell[cell].append((Change(did, "notification", data, now), self._user_targets(cell, user_id,
                                                                                                 did or None)))
        queued = 0
        for cell, wanted in by_cell.items():
            with self.dbs.cell_session(cell) as s:
                queued += len(self._queue(s, wanted, now))
        return queued

    def fan_out(self, cell: str) -> int:
        """Turn the oldest outbox rows of a cell into queued messages, one per subscription that wants each, in one
        transaction with their removal from the outbox (exactly once; a crash in between undoes both); → rows."""
        with self.dbs.cell_session(cell) as s:  # a read first: an idle cell costs no write transaction
            if not outbox.pending(s):
                return 0
        return self._fan_out(cell)[0]

    def _fan_out(self, cell: str, *, lease: int | None = None) -> tuple[int, builtins.list[Queued]]:
        """→ (changes taken from the outbox, the messages queued for them, leased until `lease` when given)."""
        targets = self._targets_of(cell)
        with self.dbs.cell_session(cell) as s:
            width = self._width.get(cell, 1)  # subscriptions of the most-watched device
            changes = outbox.claim(s, max(1, min(self.policy.fan_out_batch, self.policy.fan_out_rows // width)))
            fresh = self._queue(s, [(c, targets.get(c.did, [])) for c in changes], _now_ms(), lease=lease)
        return len(changes), fresh

    def _queue(self, s: Session, wanted: Sequence[tuple[Change, builtins.list[Target]]], now: int, *,
               lease: int | None = None) -> builtins.list[Queued]:
        """Insert one pending message per (change, target that wants it), each app's daily quota counted once per
        round; what the quota refuses goes straight to the dead letters; → the pending ones. With `lease` they are
        queued already claimed by the caller (who sends them next, without claiming them again)."""
        picked = [(c, t) for c, targets in wanted for t in targets
                  if c.kind in t.events and self._active(t.app_id)]  # a suspended app gets nothing
        allowed = {app: self.quotas.push(app, n) for app, n in Counter(t.app_id for _, t in picked).items()}
        rows = []
        fresh: builtins.list[Queued] = []
        ids = message_ids(now)
        encoded: dict[int, str] = {}  # a change's payload is the same for every subscription: encoded once
        for c, t in picked:
            ok = allowed[t.app_id] > 0
            allowed[t.app_id] -= 1
            payload = encoded.get(id(c))
            if payload is None:
                payload = encoded[id(c)] = json.dumps({"type": c.kind, "timestamp": c.created_ms, "data": c.data},
                                                      separators=(",", ":"), default=str)
            msg_id = next(ids)
            rows.append({"id": msg_id, "webhook_id": t.webhook_id, "did": c.did, "event_type": c.kind,
                         "payload_json": payload, "status": "pending" if ok else "dead", "attempts": 0,
                         "next_at": lease if lease and ok else now, "created_ms": now,
                         "last_error": None if ok else "the app's daily push quota is spent"})
            if ok:
                fresh.append(Queued(msg_id, t.webhook_id, 0, now, payload))
        if rows:  # Core executemany with the payload bound as JSON text: no ORM bookkeeping, no encoding per row
            text_param = bindparam("payload_json", type_=Text)
            as_json = cast(text_param, JSONB) if s.get_bind().dialect.name == "postgresql" else text_param
            s.execute(QUEUE.insert().values(payload=as_json), rows)
        return fresh

    # -- delivery -------------------------------------------------------------------------------------------------
    def _widest_batch(self, cell: str) -> int:
        """The largest `batch_max` of the cell's active webhooks (cached like the subscriptions, 5 s)."""
        hit = self._widest.get(cell)
        if hit is None or time.monotonic() - hit[0] > 5.0:
            with self.dbs.cell_session(cell) as s:
                widest = s.scalar(select(func.max(WebhookSubscription.batch_max))
                                  .where(WebhookSubscription.status == "active"))
            hit = self._widest[cell] = (time.monotonic(), int(widest or 1))
        return hit[1]

    def _probe(self, cell: str) -> tuple[bool, bool]:
        """(anything in the outbox, anything due in the queue): one read, so an idle cell costs no write transaction
        (and takes no write lock from ingest on SQLite)."""
        with self.dbs.cell_session(cell) as s:
            due = s.execute(select(QUEUE.c.id).where(QUEUE.c.status == "pending", QUEUE.c.next_at <= _now_ms())
                            .limit(1)).first()
            return outbox.pending(s), due is not None

    def _lease(self) -> int:
        """Until when a claim holds its messages: past the send's timeout."""
        return _now_ms() + int(self.policy.timeout_s * 2000) + 1000

    def prepare(self, cell: str) -> tuple[int, builtins.list[Post]]:
        """A round's database side for one cell: fan the outbox out (its messages queued already leased to this
        process: no claim statement for them), then claim what else is due; → (changes fanned out, the POSTs)."""
        in_outbox, due = self._probe(cell)
        fanned, fresh = self._fan_out(cell, lease=self._lease()) if in_outbox else (0, [])
        return fanned, self._claim(cell, fresh=fresh, claim=due) if due or fresh else []

    def due(self, cell: str) -> builtins.list[Post]:
        """Claim pending messages whose time has come (oldest first), grouped into POSTs (see `_claim`)."""
        return self._claim(cell) if self._probe(cell)[1] else []

    def _claim(self, cell: str, *, fresh: Sequence[Queued] = (), claim: bool = True) -> builtins.list[Post]:
        """Claim pending messages whose time has come (oldest first) and group them into POSTs: one a message, or up
        to a subscription's `batch_max` of its messages in created order.

        Each claimed row's `next_at` moves past the send's timeout (a lease), so several delivering processes
        never send one message at the same time, and a process that dies mid-send leaves it to the next. A round
        makes at most `policy.batch` POSTs; the messages claimed beyond them are released at once."""
        now, lease = _now_ms(), self._lease()
        limit = min(self.policy.batch * self._widest_batch(cell), max(self.policy.batch, self.policy.batch_rows))
        q, hooks = QUEUE.c, HOOKS.c
        with self.dbs.cell_session(cell) as s:
            oldest = (select(q.id).join(HOOKS, hooks.id == q.webhook_id)
                      .where(q.status == "pending", q.next_at <= now, hooks.status == "active")
                      .order_by(q.next_at).limit(limit))
            if s.get_bind().dialect.name == "postgresql":
                oldest = oldest.with_for_update(skip_locked=True, of=QUEUE)
            # one UPDATE … RETURNING takes the whole claim, the columns a send needs with it (its first statement
            # writes: SQLite queues it behind another writer instead of failing a stale read); Core statements on
            # the tables: no ORM bookkeeping
            rows: builtins.list[Claimed] = list(fresh)
            if claim:
                rows += s.execute(update(QUEUE)
                                  .where(q.id.in_(oldest), q.status == "pending", q.next_at <= now)
                                  .values(next_at=lease)
                                  .returning(q.id, q.webhook_id, q.attempts, q.created_ms,
                                             cast(q.payload, Text).label("payload_json"))).all()  # sent as stored
            if not rows:
                return []
            subscriptions = {h.id: h for h in s.execute(  # (fresh messages of a webhook disabled since: kept)
                select(hooks.id, hooks.app_id, hooks.url, hooks.secret, hooks.batch_max)
                .where(hooks.id.in_({r.webhook_id for r in rows}), hooks.status == "active"))}
            posts = group([r for r in rows if r.webhook_id in subscriptions], subscriptions)
            spare = [m.id for p in posts[self.policy.batch:] for m in p.messages]
            if spare:
                s.execute(update(QUEUE).where(q.id.in_(spare)).values(next_at=now))
            return posts[:self.policy.batch]

    def sender(self) -> Sender:
        """The HTTP side for `deliver_once` (`async with push.sender() as sender:`), with this policy's timeout."""
        return Sender(timeout_s=self.policy.timeout_s)

    async def deliver_once(self, sender: Sender) -> int:
        """One round: queue what arrived, send every due message (bounded concurrency); → messages attempted."""
        if self._buffer:
            await asyncio.to_thread(self.flush)
        attempted = 0
        gate = asyncio.Semaphore(self.policy.concurrency)
        for cell in self.dbs.cells:
            fanned, posts = await asyncio.to_thread(self.prepare, cell)
            attempted += fanned
            posts = [p for p in posts if self._active(p.hook.app_id)]
            if not posts:
                continue
            checked: dict[str, str | None] = {}
            for post in posts:  # the SSRF guard again, right before sending (DNS may have changed)
                hook = post.hook
                if hook.id not in checked:
                    try:
                        await asyncio.to_thread(self.url_policy.check, hook.url)
                        checked[hook.id] = None
                    except EcohubError as err:
                        checked[hook.id] = err.message

            # at most a pool's worth in flight per subscriber origin: a slow subscriber holds no global slot while
            # its requests wait for its connections
            per_origin: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(sender.per_origin))
            results = await asyncio.gather(*(self._send(sender, gate, per_origin[origin(p.hook.url)], checked, p)
                                             for p in posts))
            await asyncio.to_thread(self._record, cell, list(zip(posts, results, strict=True)))
            attempted += sum(len(p.messages) for p in posts)
        return attempted

    async def _send(self, sender: Sender, gate: asyncio.Semaphore, origin_gate: asyncio.Semaphore,
                    refused: dict[str, str | None], post: Post) -> str | None:
        if refused[post.hook.id] is not None:
            return f"refused before sending: {refused[post.hook.id]}"
        async with origin_gate, gate:  # the origin first: waiting for a busy subscriber holds no global slot
            return await self._post(sender, post)

    async def _post(self, sender: Sender, post: Post) -> str | None:
        h = post.hook
        msg_id, body = post.message_id(), post.body()
        ts = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts),
                   "webhook-signature": sign_webhook(h.secret, msg_id, ts, body), "user-agent": "ecohub-webhooks/1"}
        return await sender.post(h.url, body, headers)

    def _record(self, cell: str, sent: builtins.list[tuple[Post, str | None]]) -> None:
        """The answers of a round: a POST's success delivers every message it carried (they leave the queue); its
        failure retries them all together (paced by the most-tried one), and a message out of attempts goes to the
        dead letters. One statement for the delivered and one per failed POST, whatever the number of messages."""
        now = _now_ms()
        ok_hooks: set[str] = set()
        bad_hooks: set[str] = set()
        delivered: list[str] = []
        failed: list[tuple[Post, str]] = []
        for post, error in sent:
            if error is None:
                delivered += [m.id for m in post.messages]
                ok_hooks.add(post.hook.id)
            else:
                failed.append((post, error))
                bad_hooks.add(post.hook.id)
        self.delivered += len(delivered)
        with self.dbs.cell_session(cell) as s:
            for i in range(0, len(delivered), 5000):  # within every database's limit of bound parameters
                s.execute(delete(QUEUE).where(QUEUE.c.id.in_(delivered[i:i + 5000])))
            for post, error in failed:
                self.failed_attempts += len(post.messages)
                n = 1 + max(m.attempts for m in post.messages)
                wait_ms = int(1000 * backoff_s(n, base=self.policy.base_s, cap=self.policy.cap_s))
                s.execute(update(QUEUE).where(QUEUE.c.id.in_([m.id for m in post.messages]))
                          .values(attempts=QUEUE.c.attempts + 1, next_at=now + wait_ms, last_error=error,
                                  status=case((QUEUE.c.attempts + 1 >= self.policy.max_attempts, "dead"),
                                              else_="pending")))
            if ok_hooks:  # one statement, and no write for the webhooks that were not failing
                s.execute(update(HOOKS).where(HOOKS.c.id.in_(ok_hooks),
                                              (HOOKS.c.failures != 0) | HOOKS.c.failing_since_ms.isnot(None))
                          .values(failures=0, failing_since_ms=None))
            for hook_id in bad_hooks - ok_hooks:
                hook = s.get(WebhookSubscription, hook_id)
                if hook is None:
                    continue
                hook.failures += 1
                hook.failing_since_ms = hook.failing_since_ms or now
                if now - hook.failing_since_ms >= self.policy.disable_after_s * 1000:
                    hook.status, hook.disabled_reason = "disabled", "failing for too long"
                    hook.disabled_at = utcnow()
                    s.execute(update(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id,
                                                            WebhookDelivery.status == "pending")
                              .values(status="dead", last_error="the webhook was disabled"))
                    self.invalidate(cell)

    async def run(self, *, idle_s: float = 0.2, deliver: bool = True) -> None:
        """The delivery loop (the hub process): fan the outbox out into the queue, send, retry, until cancelled;
        survives restarts because the outbox and the queue are in the database. `deliver=False` (ingest worker
        processes; a hub told not to send) only queues this process's notifications: another process fans out and
        sends."""
        self.queueing = True
        try:
            await self._loop(idle_s, deliver)
        finally:
            self.queueing = False

    async def _loop(self, idle_s: float, deliver: bool) -> None:
        clock = asyncio.get_running_loop().time
        async with self.sender() as sender:
            while True:
                began = clock()
                try:
                    if deliver:
                        attempted = await self.deliver_once(sender)
                    else:
                        attempted = await asyncio.to_thread(self.flush) if self._buffer else 0
                except Exception:  # a failing round is logged and retried, never the end of push
                    log.exception("webhook delivery round failed")
                    attempted = 0
                if not attempted:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=idle_s)
                elif (rest := self.policy.round_s - (clock() - began)) > 0:
                    await asyncio.sleep(rest)


def _hook_view(h: WebhookSubscription) -> dict[str, Any]:
    return {"webhook_id": h.id, "url": h.url, "events": list(h.events), "batch_max": h.batch_max,
            "status": h.status, "failures": h.failures,
            "created_at": aware(h.created_at).isoformat() if h.created_at else None,
            "disabled_reason": h.disabled_reason}
