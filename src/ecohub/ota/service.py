"""Use cases of OTA campaigns: create (validated), offer by stage, record progress, halt, advance, pause, cancel.

Every method here is synchronous database work; the engine (`ota.engine`) runs them off the event loop, one at a
time, and publishes the offers they return.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update

from ecohub.auth import Principal, Role, check_partner
from ecohub.bus import EventBus
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from ecohub.ota.domain import (
    ACTIVE,
    DEFAULT_DEVICE_TIMEOUT_S,
    DEFAULT_STAGES,
    DEFAULT_THRESHOLD,
    FINISHED,
    IN_FLIGHT,
    STEP_ORDER,
    CampaignStatus,
    Tally,
    UpdateState,
    check_rate,
    check_stages,
    check_threshold,
    is_newer,
    open_token,
    parse_version,
    room,
    sign_token,
    stage_of,
)
from ecohub.ota.events import CampaignChanged
from ecohub.ota.firmware import FirmwareService
from ecohub.ota.models import Campaign, DeviceUpdate
from ecohub.protocol import Code
from ecohub.protocol.messages import OtaSignature, OtaUpdateParams
from ecohub.region.domain import cell_for_country
from ecohub.store import Databases, now_ms
from ecohub.store.db import utcnow
from ecohub.twin.service import TwinService

TOKEN_TTL_S = 3600  # a download URL is good for an hour; a re-offer hands out a fresh one
OFFER_RETRY_S = 20.0  # an offered device silent this long (the offer may be lost) is offered again …
MAX_OFFERS = 5  # … this many times in all
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Offer:
    """An ota_update to send to one device."""

    did: str
    campaign_id: int
    params: OtaUpdateParams


def campaign_dict(c: Campaign) -> dict[str, Any]:
    """A campaign's own fields."""
    return {"campaign_id": c.id, "model": c.model, "version": c.version, "image_id": c.image_id,
            "rollback": c.rollback, "market": c.market, "cell": c.cell, "stages": list(c.stages),
            "threshold": c.threshold, "device_timeout_s": c.device_timeout_s, "max_in_flight": c.max_in_flight,
            "max_per_minute": c.max_per_minute, "stage": c.stage,
            "stage_percent": c.stages[c.stage], "status": c.status, "reason": c.reason, "targets": c.targets,
            "accepted_failed": c.accepted_failed, "accepted_finished": c.accepted_finished,
            "created_by": c.created_by, "created_at": c.created_at.isoformat(), "updated_at": c.updated_at.isoformat()}


class CampaignService:
    """Staged rollouts of approved images; deterministic by did; halts itself over the failure threshold."""

    def __init__(self, dbs: Databases, bus: EventBus, *, products: ProductService, devices: DeviceService,
                 twin: TwinService, firmware: FirmwareService, token_key: bytes,
                 clock: Callable[[], float] = time.time, offer_retry_s: float = OFFER_RETRY_S,
                 default_max_in_flight: int = 0) -> None:
        self.dbs = dbs
        self.bus = bus
        self.products = products
        self.devices = devices
        self.twin = twin
        self.firmware = firmware
        self.token_key = token_key
        self.clock = clock
        self.offer_retry_s = offer_retry_s
        self.default_max_in_flight = default_max_in_flight
        self._approved: dict[int, tuple[str, int]] = {}
        self._campaign_cells: dict[int, list[str]] = {}

    # creating ---------------------------------------------------------------------------------------------------
    def create(self, *, model: str, version: str, market: str | None = None, cell: str | None = None,
               stages: list[int] | None = None, threshold: float = DEFAULT_THRESHOLD, rollback: bool = False,
               device_timeout_s: int = DEFAULT_DEVICE_TIMEOUT_S, max_in_flight: int | None = None,
               max_per_minute: int = 0, caller: Principal | None = None, actor: str = "cli") -> dict[str, Any]:
        """A campaign of an approved image to the model's devices (optionally of one market's cell or one cell),
        at most `max_in_flight` updating at once (None: the hub's default) and `max_per_minute` offers a minute
        (0: no cap)."""
        if caller is not None and caller.role == Role.USER:
            raise Forbidden("users cannot run firmware campaigns", code=ErrorCode.WRONG_ROLE)
        stages = check_stages(list(DEFAULT_STAGES) if stages is None else stages)
        threshold = check_threshold(threshold)
        if isinstance(device_timeout_s, bool) or not 10 <= device_timeout_s <= 7 * 86400:
            raise InvalidInput("device_timeout_s must be 10 s to 7 days", code=ErrorCode.INVALID_INPUT)
        max_in_flight = check_rate(self.default_max_in_flight if max_in_flight is None else max_in_flight,
                                   "max_in_flight")
        max_per_minute = check_rate(max_per_minute, "max_per_minute")
        target = parse_version(version)
        product = self.products.get(model)
        check_partner(caller, product.partner_id)
        image = self.firmware.find(model, version)
        if image["status"] != "approved":
            raise Conflict(f"firmware {model} {version} (image {image['image_id']}) is not approved: the brand has "
                           "not countersigned it", code=ErrorCode.IMAGE_NOT_APPROVED)
        if market is not None:
            market = market.upper()
            market_cell = cell_for_country(market, self.dbs.cells)
            if cell is not None and cell != market_cell:
                raise InvalidInput(f"market {market} is served by cell {market_cell}, not {cell}",
                                   code=ErrorCode.WRONG_CELL)
            cell = market_cell
        cells = [self.dbs.check_cell(cell)] if cell else list(self.dbs.cells)
        dids = {c: [d.did for d in self.devices.list(cell=c, model=model, limit=10**9) if d.status == "active"]
                for c in cells}
        if not any(dids.values()):
            raise InvalidInput(f"no active {model} device{' in cell ' + cell if cell else ''} to update",
                               code=ErrorCode.NO_TARGET_DEVICES)
        installed = [v for c in cells for v in self.twin.firmware_versions(c, dids[c]).values() if v]
        known = [v for v in installed if _comparable(v)]
        newest = max(known, key=parse_version) if known else None
        if not rollback and newest is not None and parse_version(newest) >= target:
            raise Conflict(f"devices of {model} already run {newest}; {version} is not newer (a campaign back to "
                           "an older version needs rollback: true)", code=ErrorCode.VERSION_NOT_NEWER)
        if rollback and newest is not None and parse_version(newest) <= target:
            raise InvalidInput(f"a rollback goes back to an older version; the newest {model} devices run {newest}",
                               code=ErrorCode.VERSION_NOT_NEWER)
        with self.dbs.global_session() as s:
            busy = s.scalar(select(Campaign.id).where(Campaign.model == model, Campaign.status.in_(list(ACTIVE))))
            if busy is not None:
                raise Conflict(f"campaign {busy} of {model} is still active: cancel it first",
                               code=ErrorCode.CAMPAIGN_ACTIVE, campaign_id=busy)
            row = Campaign(model=model, partner_id=product.partner_id or "", image_id=image["image_id"],
                           version=version, rollback=rollback, market=market, cell=cell, stages=stages,
                           threshold=threshold, device_timeout_s=device_timeout_s, max_in_flight=max_in_flight,
                           max_per_minute=max_per_minute, stage=0,
                           # paused until its devices are recorded: an engine tick in between would find none and
                           # call it completed (10,000 rows take longer than a tick)
                           status=CampaignStatus.PAUSED, reason="preparing: recording its target devices",
                           targets=sum(len(v) for v in dids.values()), created_by=actor)
            s.add(row)
            s.flush()
            campaign_id = int(row.id)
        now = now_ms()
        for c, part in dids.items():
            if not part:
                continue
            versions = self.twin.firmware_versions(c, part)
            with self.dbs.cell_session(c) as s:
                s.execute(insert(DeviceUpdate), [
                    {"campaign_id": campaign_id, "did": d, "stage": stage_of(d, stages), "state": UpdateState.PENDING,
                     "progress": 0, "code": 0, "message": "", "from_version": versions.get(d), "offers": 0,
                     "updated_ms": now} for d in part])
        with self.dbs.global_session() as s:
            s.execute(update(Campaign).where(Campaign.id == campaign_id)
                      .values(status=CampaignStatus.RUNNING, reason="", updated_at=utcnow()))
        self.bus.publish([CampaignChanged(campaign_id, CampaignStatus.RUNNING, 0, "created")])
        return self.get(campaign_id)

    # reading ----------------------------------------------------------------------------------------------------
    def _campaign(self, campaign_id: int, caller: Principal | None = None) -> dict[str, Any]:
        with self.dbs.global_session() as s:
            c = s.get(Campaign, campaign_id)
            if c is None:
                raise NotFound(f"no campaign {campaign_id}", code=ErrorCode.UNKNOWN_CAMPAIGN)
            if caller is not None and caller.role == Role.USER:
                raise Forbidden("users cannot see firmware campaigns", code=ErrorCode.WRONG_ROLE)
            check_partner(caller, c.partner_id or None)
            return campaign_dict(c)

    def _cells(self, c: dict[str, Any]) -> list[str]:
        """The cells holding the campaign's devices (asked once per campaign: targets are fixed at creation)."""
        if c["cell"]:
            return [c["cell"]]
        known = self._campaign_cells.get(c["campaign_id"])
        if known is None:
            known = []
            for cell in self.dbs.cells:
                with self.dbs.cell_session(cell) as s:
                    if s.scalar(select(DeviceUpdate.did).where(DeviceUpdate.campaign_id == c["campaign_id"])
                                .limit(1)) is not None:
                        known.append(cell)
            if known:  # none yet: asked again (never remember a campaign as having no devices)
                self._campaign_cells[c["campaign_id"]] = known
        return known

    def _tallies(self, c: dict[str, Any]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for cell in self._cells(c):
            with self.dbs.cell_session(cell) as s:
                for stage, state, n in s.execute(
                        select(DeviceUpdate.stage, DeviceUpdate.state, func.count())
                        .where(DeviceUpdate.campaign_id == c["campaign_id"])
                        .group_by(DeviceUpdate.stage, DeviceUpdate.state)).tuples():
                    out[stage][state] += n
        return out

    def get(self, campaign_id: int, *, caller: Principal | None = None, devices: int = 100) -> dict[str, Any]:
        """A campaign with progress per stage and overall, and its devices (the first `devices`, by did)."""
        c = self._campaign(campaign_id, caller)
        tallies = self._tallies(c)
        total: dict[str, int] = defaultdict(int)
        stages = []
        for i, pct in enumerate(c["stages"]):
            counts = dict(tallies.get(i, {}))
            for k, v in counts.items():
                total[k] += v
            t = Tally(counts)
            stages.append({"stage": i, "percent": pct, "devices": t.total, "counts": counts,
                           "finished": t.of(*FINISHED), "failure_rate": round(t.failure_rate, 2),
                           "state": "done" if i < c["stage"] or c["status"] == CampaignStatus.COMPLETED
                           else "current" if i == c["stage"] else "waiting"})
        overall = Tally(dict(total))
        rows: list[dict[str, Any]] = []
        for cell in self._cells(c):
            with self.dbs.cell_session(cell) as s:
                rows += [{"did": r.did, "cell": cell, "stage": r.stage, "state": r.state, "progress": r.progress,
                          "code": r.code, "message": r.message, "from_version": r.from_version, "offers": r.offers,
                          "updated_ts": r.updated_ms}
                         for r in s.scalars(select(DeviceUpdate).where(DeviceUpdate.campaign_id == campaign_id)
                                            .order_by(DeviceUpdate.did).limit(devices))]
        rows.sort(key=lambda r: r["did"])
        return {**c, "counts": dict(total), "finished": overall.of(*FINISHED),
                "failure_rate": round(overall.failure_rate, 2), "stage_progress": stages, "devices": rows[:devices]}

    # operator actions -------------------------------------------------------------------------------------------
    def pause(self, campaign_id: int, *, caller: Principal | None = None) -> dict[str, Any]:
        """Stop offering (devices already updating finish); resume goes on."""
        return self._move(campaign_id, {CampaignStatus.RUNNING}, CampaignStatus.PAUSED, "paused", caller)

    def resume(self, campaign_id: int, *, caller: Principal | None = None) -> dict[str, Any]:
        """Go on offering after a pause or an automatic halt: the failures so far are accepted, and the threshold
        applies to the devices that finish from now on."""
        c = self._campaign(campaign_id, caller)
        if c["status"] == CampaignStatus.HALTED:
            t = self._overall(c)
            with self.dbs.global_session() as s:
                row = s.get(Campaign, campaign_id)
                assert row is not None
                row.accepted_failed = t.of(UpdateState.FAILED)
                row.accepted_finished = t.of(UpdateState.DONE, UpdateState.FAILED)
        return self._move(campaign_id, {CampaignStatus.PAUSED, CampaignStatus.HALTED}, CampaignStatus.RUNNING,
                          "resumed", caller)

    def _overall(self, c: dict[str, Any]) -> Tally:
        total: dict[str, int] = defaultdict(int)
        for counts in self._tallies(c).values():
            for k, v in counts.items():
                total[k] += v
        return Tally(dict(total))

    def cancel(self, campaign_id: int, *, caller: Principal | None = None) -> dict[str, Any]:
        """End the campaign: nothing more is offered; devices not yet offered are marked cancelled."""
        out = self._move(campaign_id, set(ACTIVE), CampaignStatus.CANCELLED, "cancelled", caller)
        for cell in self._cells(out):
            with self.dbs.cell_session(cell) as s:
                s.execute(update(DeviceUpdate).where(DeviceUpdate.campaign_id == campaign_id,
                                                     DeviceUpdate.state == UpdateState.PENDING)
                          .values(state=UpdateState.CANCELLED, updated_ms=now_ms()))
        return self.get(campaign_id)

    def _move(self, campaign_id: int, allowed: set[CampaignStatus], to: CampaignStatus, reason: str,
              caller: Principal | None) -> dict[str, Any]:
        c = self._campaign(campaign_id, caller)
        if c["status"] not in allowed:
            raise Conflict(f"campaign {campaign_id} is {c['status']}; cannot {reason.removesuffix('d')}",
                           code=ErrorCode.ILLEGAL_TRANSITION)
        self._set_status(campaign_id, to, reason)
        return self.get(campaign_id)

    def _set_status(self, campaign_id: int, status: str, reason: str, stage: int | None = None) -> None:
        with self.dbs.global_session() as s:
            c = s.get(Campaign, campaign_id)
            assert c is not None
            c.status, c.reason, c.updated_at = status, reason, utcnow()
            if stage is not None:
                c.stage = stage
            current = c.stage
        self.bus.publish([CampaignChanged(campaign_id, status, current, reason)])

    # the engine's side ------------------------------------------------------------------------------------------
    def running(self) -> list[int]:
        """Ids of the running campaigns."""
        with self.dbs.global_session() as s:
            return list(s.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING)))

    def offer_params(self, campaign: dict[str, Any], did: str, base_url: str,
                     image: dict[str, Any] | None = None) -> OtaUpdateParams:
        """What a device is sent: the image's version, hash, size, both signatures and its own download URL."""
        image = image or self.firmware.get(campaign["image_id"])
        token = sign_token(self.token_key, did, image["image_id"], int(self.clock()) + TOKEN_TTL_S)
        return OtaUpdateParams(version=image["version"], url=f"{base_url}/api/v1/firmware/download/{token}",
                               sha256=image["sha256"], size=image["size"], rollback=bool(campaign["rollback"]),
                               signatures=[OtaSignature(**sig) for sig in image["signatures"]])

    def download(self, token: str) -> tuple[str, int]:
        """(sha256, size) of the image a valid per-device token names (approved images never change: they are
        remembered, so a fleet downloading costs no database read per request); the bytes are in `firmware.store`."""
        _did, image_id = open_token(self.token_key, token, self.clock())
        found = self._approved.get(image_id)
        if found is None:
            image = self.firmware.get(image_id)
            if image["status"] != "approved":
                raise Forbidden(f"image {image_id} is not approved", code=ErrorCode.IMAGE_NOT_APPROVED)
            found = self._approved[image_id] = (image["sha256"], image["size"])
        return found

    def evaluate(self, campaign_id: int, base_url: str | None) -> list[Offer]:
        """Halt over the threshold, time out silent devices, offer the current stage to online devices, advance
        when the stage finished; returns the offers to send (none without a base URL to download from)."""
        c = self._campaign(campaign_id)
        if c["status"] != CampaignStatus.RUNNING:
            return []
        now = now_ms()
        timeout_before = now - c["device_timeout_s"] * 1000
        for cell in self._cells(c):
            with self.dbs.cell_session(cell) as s:
                s.execute(update(DeviceUpdate).where(
                    DeviceUpdate.campaign_id == campaign_id, DeviceUpdate.state.in_(list(IN_FLIGHT)),
                    DeviceUpdate.offered_ms < timeout_before).values(
                    state=UpdateState.FAILED, code=int(Code.OTA_TIMEOUT),
                    message=f"no result within {c['device_timeout_s']} s", updated_ms=now))
        offers: list[Offer] = []
        if base_url is not None:
            offers += self._offer_again(c, now, base_url)
        stage = c["stage"]
        while True:
            if self._halt_if_over(c):
                return offers
            if base_url is not None:
                offers += self._offer_pending(c, stage, base_url)
            tallies = self._tallies(c)
            upto: dict[str, int] = defaultdict(int)
            for i in range(stage + 1):
                for k, v in tallies.get(i, {}).items():
                    upto[k] += v
            t = Tally(dict(upto))
            if t.of(*IN_FLIGHT) or base_url is None:
                return offers
            pending_online = self._pending(c, stage, online_only=True)
            if pending_online:
                return offers
            if stage + 1 < len(c["stages"]):
                stage += 1
                c["stage"] = stage
                self._set_status(campaign_id, CampaignStatus.RUNNING, f"stage {stage + 1} ({c['stages'][stage]}%)",
                                 stage)
                continue
            if not self._pending(c, stage, online_only=False):
                self._set_status(campaign_id, CampaignStatus.COMPLETED, "every target device finished")
            return offers

    def _offer_again(self, c: dict[str, Any], now: int, base_url: str) -> list[Offer]:
        """Offers go to the device at most once (QoS 0 from the cloud): an online device that said nothing within
        `offer_retry_s` gets the offer again, MAX_OFFERS times in all; then it fails (no answer)."""
        offers: list[Offer] = []
        quiet = now - int(self.offer_retry_s * 1000)
        for cell in self._cells(c):
            with self.dbs.cell_session(cell) as s:
                rows = s.execute(select(DeviceUpdate.did, DeviceUpdate.offers).where(
                    DeviceUpdate.campaign_id == c["campaign_id"], DeviceUpdate.state == UpdateState.OFFERED,
                    DeviceUpdate.updated_ms < quiet)).all()
                gave_up = [d for d, n in rows if n >= MAX_OFFERS]
                if gave_up:
                    s.execute(update(DeviceUpdate).where(DeviceUpdate.campaign_id == c["campaign_id"],
                                                         DeviceUpdate.did.in_(gave_up),
                                                         DeviceUpdate.state == UpdateState.OFFERED)
                              .values(state=UpdateState.FAILED, code=int(Code.OTA_TIMEOUT),
                                      message=f"no answer to {MAX_OFFERS} offers", updated_ms=now))
            again = sorted(self.twin.online(cell, [d for d, n in rows if n < MAX_OFFERS]))
            if again:
                offers += self._offer(c, cell, again, base_url, states=frozenset({UpdateState.OFFERED}))
        return offers

    def _halt_if_over(self, c: dict[str, Any]) -> bool:
        t = self._overall(c)
        failed = t.of(UpdateState.FAILED) - c["accepted_failed"]
        finished = t.of(UpdateState.DONE, UpdateState.FAILED) - c["accepted_finished"]
        rate = 100.0 * failed / finished if finished > 0 else 0.0
        if failed > 0 and rate > c["threshold"]:
            since = " since it was resumed" if c["accepted_finished"] else ""
            self._set_status(c["campaign_id"], CampaignStatus.HALTED,
                             f"failure rate {rate:.1f}% over the threshold {c['threshold']:g}% "
                             f"({failed} of {finished} failed{since})")
            return True
        return False

    def _pending(self, c: dict[str, Any], stage: int, *, online_only: bool) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for cell in self._cells(c):
            with self.dbs.cell_session(cell) as s:
                dids = list(s.scalars(select(DeviceUpdate.did).where(
                    DeviceUpdate.campaign_id == c["campaign_id"], DeviceUpdate.state == UpdateState.PENDING,
                    DeviceUpdate.stage <= stage)))
            if online_only and dids:
                dids = sorted(self.twin.online(cell, dids))
            if dids:
                out[cell] = dids
        return out

    def _offer_pending(self, c: dict[str, Any], stage: int, base_url: str) -> list[Offer]:
        """Offer the stage to its online pending devices, as many as the campaign's caps leave room for."""
        offers: list[Offer] = []
        budget = self._room(c)
        for cell, dids in self._pending(c, stage, online_only=True).items():
            if budget is not None and budget <= 0:
                break
            made = self._offer(c, cell, dids if budget is None else dids[:budget], base_url)
            offers += made
            if budget is not None:
                budget -= len(made)
        return offers

    def _room(self, c: dict[str, Any]) -> int | None:
        """How many more devices the campaign may offer now (None: it has no cap)."""
        if not c["max_in_flight"] and not c["max_per_minute"]:
            return None
        since = now_ms() - 60_000
        in_flight = last_minute = 0
        for cell in self._cells(c):
            with self.dbs.cell_session(cell) as s:
                a, b = s.execute(select(
                    func.count().filter(DeviceUpdate.state.in_(list(IN_FLIGHT))),
                    func.count().filter(DeviceUpdate.offered_ms >= since),
                ).where(DeviceUpdate.campaign_id == c["campaign_id"])).one()
            in_flight, last_minute = in_flight + int(a), last_minute + int(b)
        return room(in_flight=in_flight, offered_last_minute=last_minute, max_in_flight=c["max_in_flight"],
                    max_per_minute=c["max_per_minute"])

    def _offer(self, c: dict[str, Any], cell: str, dids: list[str], base_url: str,
               states: frozenset[str] = frozenset({UpdateState.PENDING})) -> list[Offer]:
        """Mark devices offered (or skipped: they run this version or newer) and build their offers."""
        versions = self.twin.firmware_versions(cell, dids)
        now = now_ms()
        # in flight and now on the target version: it updated, its reports are late or lost (done, not skipped);
        # the skip below then finds those rows no longer in `states`
        arrived = [d for d in dids if versions.get(d) == c["version"]]
        flying = [st for st in states if st in IN_FLIGHT]
        skip = [d for d in dids if not c["rollback"] and versions.get(d) and not is_newer(c["version"], versions[d])]
        send = [d for d in dids if d not in set(skip) | set(arrived)]
        with self.dbs.cell_session(cell) as s:
            for i in range(0, len(arrived) if flying else 0, CHUNK):
                s.execute(update(DeviceUpdate).where(DeviceUpdate.campaign_id == c["campaign_id"],
                                                     DeviceUpdate.did.in_(arrived[i:i + CHUNK]),
                                                     DeviceUpdate.state.in_(flying))
                          .values(state=UpdateState.DONE, progress=100,
                                  message="runs the version (its reports were not seen)", updated_ms=now))
            for i in range(0, len(skip), CHUNK):
                s.execute(update(DeviceUpdate).where(DeviceUpdate.campaign_id == c["campaign_id"],
                                                     DeviceUpdate.did.in_(skip[i:i + CHUNK]),
                                                     DeviceUpdate.state.in_(list(states)))
                          .values(state=UpdateState.SKIPPED, message="already runs this version or newer",
                                  updated_ms=now))
            offered: list[str] = []
            for i in range(0, len(send), CHUNK):
                part = send[i:i + CHUNK]
                offered += list(s.scalars(update(DeviceUpdate).where(
                    DeviceUpdate.campaign_id == c["campaign_id"], DeviceUpdate.did.in_(part),
                    DeviceUpdate.state.in_(list(states))).values(
                    state=UpdateState.OFFERED, progress=0, offers=DeviceUpdate.offers + 1, offered_ms=now,
                    updated_ms=now).returning(DeviceUpdate.did)))
        image = self.firmware.get(c["image_id"]) if offered else None
        return [Offer(d, c["campaign_id"], self.offer_params(c, d, base_url, image)) for d in offered]

    def _active_rows(self, cell: str, did: str) -> list[tuple[DeviceUpdate, dict[str, Any]]]:
        with self.dbs.cell_session(cell) as s:
            rows = list(s.scalars(select(DeviceUpdate).where(DeviceUpdate.did == did,
                                                             DeviceUpdate.state != UpdateState.CANCELLED)))
            s.expunge_all()
        out = []
        for r in rows:
            c = self._campaign(r.campaign_id)
            if c["status"] in ACTIVE or (c["status"] == CampaignStatus.COMPLETED and r.state == UpdateState.DONE):
                out.append((r, c))
        return out

    def on_progress(self, cell: str, did: str, version: str, state: str, progress: int, code: int,
                    message: str, base_url: str | None) -> list[Offer]:
        """Record a device's ota_progress on its open update of that version; then evaluate the campaign."""
        campaign_id = self.record_progress(cell, did, version, state, progress, code, message)
        return self.evaluate(campaign_id, base_url) if campaign_id is not None else []

    def record_progress(self, cell: str, did: str, version: str, state: str, progress: int, code: int,
                        message: str) -> int | None:
        """Record a device's ota_progress on its open update of that version; → the campaign when it was a result
        (which may halt the campaign or finish its stage: evaluate it), else None."""
        for r, c in self._active_rows(cell, did):
            if c["version"] != version or r.state not in IN_FLIGHT:
                continue
            if state not in {s.value for s in UpdateState} - {UpdateState.PENDING, UpdateState.OFFERED,
                                                                UpdateState.SKIPPED, UpdateState.CANCELLED}:
                continue
            if state in STEP_ORDER and STEP_ORDER[UpdateState(state)] < STEP_ORDER[UpdateState(r.state)]:
                return None  # a step the device took before the one recorded, stored after it
            if state == UpdateState.DONE:
                running = self.twin.firmware_versions(cell, [did]).get(did)
                if running is not None and running != version:
                    state, code, message = UpdateState.FAILED, int(Code.OTA_REVERTED), \
                        f"reported done but runs {running}"
            self._set_row(cell, c["campaign_id"], did, state=state, progress=100 if state == UpdateState.DONE
                          else progress, code=code, message=message[:200])
            # a result may halt the campaign or finish its stage; a step on the way changes neither
            return int(c["campaign_id"]) if state in FINISHED else None
        return None

    def waits_for_version(self, cell: str, did: str, version: str, state: str) -> bool:
        """Whether a `done` of `version` comes before the device's reconnect on it was stored: the twin still shows
        another version, and the device has an open update to `version` (with several ingest workers, the reconnect
        may sit in another worker's batch that commits a moment later; after a grace the `done` is a revert)."""
        if state != UpdateState.DONE:
            return False
        running = self.twin.firmware_versions(cell, [did]).get(did)
        if running is None or running == version:
            return False
        return any(c["version"] == version and r.state in IN_FLIGHT for r, c in self._active_rows(cell, did))

    def on_online(self, cell: str, did: str, firmware_version: str | None, base_url: str | None,
                  dirty: set[int] | None = None) -> list[Offer]:
        """A device came online: a done update it reverted fails, one in flight that it finished is done (the
        campaign is then evaluated — or added to `dirty`, for the caller to evaluate once after a batch); an offer of
        the current stage goes to it."""
        offers: list[Offer] = []
        finished: set[int] = set()
        for r, c in self._active_rows(cell, did):
            if r.state == UpdateState.DONE and firmware_version is not None and firmware_version != c["version"] \
                    and self.twin.firmware_versions(cell, [did]).get(did) != c["version"]:
                # a revert only if the twin agrees: it shows the state that reached the broker last, while this event
                # may be an older one handled late (redelivered to a busy engine after its ack_wait)
                self._set_row(cell, c["campaign_id"], did, state=UpdateState.FAILED, code=int(Code.OTA_REVERTED),
                              message=f"came back on {firmware_version}")
                finished.add(int(c["campaign_id"]))
                continue
            if r.state in IN_FLIGHT and firmware_version is not None and firmware_version == c["version"]:
                # it installed while its link was down (its last reports were lost): it runs the version, it is done
                self._set_row(cell, c["campaign_id"], did, state=UpdateState.DONE, progress=100,
                              message="came back on the version (its reports were not seen)")
                finished.add(int(c["campaign_id"]))
                continue
            if c["status"] != CampaignStatus.RUNNING or r.stage > c["stage"] or base_url is None:
                continue
            # pending: its stage started while it was offline (offered now if the caps leave room, else by a
            # later tick); offered/downloading: it lost the offer in a restart (already counted in flight)
            if r.state == UpdateState.PENDING and firmware_version != c["version"] and self._room(c) == 0:
                continue
            if r.state in (UpdateState.PENDING, UpdateState.OFFERED, UpdateState.DOWNLOADING) \
                    and firmware_version != c["version"]:
                offers += self._offer(c, cell, [did], base_url, states=frozenset(
                    {UpdateState.PENDING, UpdateState.OFFERED, UpdateState.DOWNLOADING}))
        if dirty is not None:
            dirty |= finished
        else:
            for campaign_id in sorted(finished):
                offers += self.evaluate(campaign_id, base_url)
        return offers

    def last_updates(self, cell: str, dids: list[str]) -> dict[str, int]:
        """When an OTA update last completed for each of `dids` that had one (ms; a done update the device reverted
        is failed, not counted) — the security audit's signal that a device does get updates."""
        out: dict[str, int] = {}
        with self.dbs.cell_session(cell) as s:
            for i in range(0, len(dids), 5000):
                out.update({d: int(ms) for d, ms in s.execute(
                    select(DeviceUpdate.did, func.max(DeviceUpdate.updated_ms))
                    .where(DeviceUpdate.did.in_(dids[i:i + 5000]), DeviceUpdate.state == UpdateState.DONE)
                    .group_by(DeviceUpdate.did))})
        return out

    def _set_row(self, cell: str, campaign_id: int, did: str, **values: Any) -> None:
        with self.dbs.cell_session(cell) as s:
            s.execute(update(DeviceUpdate).where(DeviceUpdate.campaign_id == campaign_id, DeviceUpdate.did == did)
                      .values(**values, updated_ms=now_ms()))

    def list(self, *, model: str | None = None, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Campaigns, newest first, with their overall counts (a partner: its own products')."""
        if caller is not None and caller.role == Role.USER:
            raise Forbidden("users cannot see firmware campaigns", code=ErrorCode.WRONG_ROLE)
        q = select(Campaign).order_by(Campaign.id.desc()).limit(200)
        if model:
            q = q.where(Campaign.model == model)
        if caller is not None and caller.role == Role.PARTNER:
            q = q.where(Campaign.partner_id == caller.partner_id)
        with self.dbs.global_session() as s:
            found = [campaign_dict(c) for c in s.scalars(q)]
        out = []
        for c in found:
            total: dict[str, int] = defaultdict(int)
            for counts in self._tallies(c).values():
                for k, v in counts.items():
                    total[k] += v
            t = Tally(dict(total))
            out.append({**c, "counts": dict(total), "finished": t.of(*FINISHED),
                        "failure_rate": round(t.failure_rate, 2)})
        return out


def _comparable(version: str) -> bool:
    try:
        parse_version(version)
    except InvalidInput:
        return False
    return True
