"""Use cases of partners: registry, investment rounds and the computed cap table, exits, portfolio value."""

from __future__ import annotations

import builtins
from collections import defaultdict
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role, check_partner
from ecohub.bus import EventBus
from ecohub.ecosystem import captable
from ecohub.ecosystem.captable import RoundTerms
from ecohub.ecosystem.channel import get_market
from ecohub.ecosystem.domain import ExitKind, PartnerKind, check_currency, check_slug, money, slugify
from ecohub.ecosystem.events import PartnerExited, PartnerRegistered, RoundRecorded
from ecohub.ecosystem.models import InvestmentRound, Partner, PartnerExit, StakeOverride
from ecohub.errors import Conflict, ErrorCode, InvalidInput, NotFound
from ecohub.store import Databases, utcnow

CENT = Decimal("0.01")


def as_date(value: date | str, *, field: str) -> date:
    """A date from a `date` or an ISO string; InvalidInput otherwise."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as err:
        raise InvalidInput(f"{field}: {value!r} is not a date (YYYY-MM-DD)", code=ErrorCode.INVALID_DATE) from err


def partner_dict(p: Partner) -> dict[str, Any]:
    """A partner as services return it."""
    return {"id": p.id, "name": p.name, "kind": str(p.kind), "country": p.country,
            "founded_on": p.founded_on.isoformat(),
            "status": p.status, "stage": p.stage, "contact": {"role": p.contact_role, "email": p.contact_email}}


def round_dict(r: InvestmentRound) -> dict[str, Any]:
    """A round with its computed post-money and brand stake."""
    return {"id": r.id, "partner_id": r.partner_id, "series": r.series, "closed_on": r.closed_on.isoformat(),
            "currency": r.currency, "pre_money": _amount(r.pre_money), "raised": _amount(r.raised),
            "brand_amount": _amount(r.brand_amount), "post_money": _amount(r.post_money),
            "brand_stake_percent": str(captable.percent(Fraction(r.brand_stake_after))), "actor": r.actor}


# Per partner, (date, brand stake, valuation, currency, basis) after each round and exit, in order.
Valuations = dict[str, list[tuple[date, Decimal, Decimal, str, str]]]

class PartnerService:
    """Partners, their rounds and exits; the cap table and portfolio are always computed from rounds."""

    def __init__(self, dbs: Databases, bus: EventBus) -> None:
        self.dbs = dbs
        self.bus = bus

    def add(self, *, name: str, kind: str = PartnerKind.ECOSYSTEM, country: str, founded_on: date | str,
            partner_id: str | None = None, contact_role: str = "", contact_email: str = "",
            actor: str) -> dict[str, Any]:
        """Register a partner (a company, so the contact is a business role address, not a person's profile)."""
        if not name or not name.strip():
            raise InvalidInput("a partner needs a name", code=ErrorCode.INVALID_NAME)
        try:
            pkind = PartnerKind(kind)
        except ValueError as err:
            raise InvalidInput(f"unknown partner kind {kind!r} (ecosystem or developer)",
                               code=ErrorCode.INVALID_KIND) from err
        pid = check_slug(partner_id or slugify(name), what="partner")
        founded = as_date(founded_on, field="founded_on")
        if founded > utcnow().date():
            raise InvalidInput(f"founded_on {founded} is in the future", code=ErrorCode.INVALID_DATE)
        if contact_email and ("@" not in contact_email or len(contact_email) > 254):
            raise InvalidInput(f"{contact_email!r} is not an e-mail address", code=ErrorCode.INVALID_EMAIL)
        with self.dbs.global_session() as s:
            self._check_market(s, country)
            if s.get(Partner, pid) is not None or s.scalar(select(Partner.id).where(Partner.name == name.strip())):
                raise Conflict(f"a partner {pid!r} / {name!r} already exists", code=ErrorCode.PARTNER_EXISTS)
            p = Partner(id=pid, name=name.strip(), kind=pkind, country=country.upper(), founded_on=founded,
                        status="active", stage="prospect" if pkind == PartnerKind.ECOSYSTEM else "developer",
                        contact_role=contact_role[:64], contact_email=contact_email.lower())
            s.add(p)
            out = partner_dict(p)
        self.bus.publish([PartnerRegistered(pid, pkind)])
        return out

    @staticmethod
    def _check_market(s: Session, code: str) -> None:
        get_market(s, code)

    def _get(self, s: Session, partner_id: str) -> Partner:
        p = s.get(Partner, partner_id)
        if p is None:
            raise NotFound(f"no partner {partner_id!r}", code=ErrorCode.UNKNOWN_PARTNER)
        return p

    def get(self, partner_id: str, *, caller: Principal | None = None) -> dict[str, Any]:
        """One partner with its rounds and exit (a partner caller: only itself)."""
        check_partner(caller, partner_id)
        with self.dbs.global_session() as s:
            out = partner_dict(self._get(s, partner_id))
            out["rounds"] = [round_dict(r) for r in self._rounds(s, partner_id)]
            exit_row = s.scalar(select(PartnerExit).where(PartnerExit.partner_id == partner_id))
            out["exit"] = _exit_dict(exit_row) if exit_row else None
            return out

    def exists(self, partner_id: str) -> bool:
        """Whether a partner is registered."""
        with self.dbs.global_session() as s:
            return s.get(Partner, partner_id) is not None

    def list(self, *, kind: str | None = None, stage: str | None = None, country: str | None = None,
             limit: int = 1000, offset: int = 0, caller: Principal | None = None) -> builtins.list[dict[str, Any]]:
        """Partners, optionally by kind, stage or country (a partner caller sees only itself)."""
        if caller is not None and caller.role == Role.PARTNER:
            return [self.get(str(caller.partner_id), caller=caller)]
        q = select(Partner).order_by(Partner.id).limit(limit).offset(offset)
        if kind:
            q = q.where(Partner.kind == kind)
        if stage:
            q = q.where(Partner.stage == stage)
        if country:
            q = q.where(Partner.country == country.upper())
        with self.dbs.global_session() as s:
            return [partner_dict(p) for p in s.scalars(q)]

    def by_stage(self) -> dict[str, int]:
        """How many partners are at each stage (prospect, seed … series_d, listed, acquired, developer)."""
        with self.dbs.global_session() as s:
            return {stage: n for stage, n in s.execute(select(Partner.stage, func.count()).group_by(Partner.stage))}

    @staticmethod
    def _rounds(s: Session, partner_id: str) -> builtins.list[InvestmentRound]:
        return list(s.scalars(select(InvestmentRound).where(InvestmentRound.partner_id == partner_id)
                              .order_by(InvestmentRound.closed_on, InvestmentRound.id)))

    def add_round(self, partner_id: str, *, series: str, closed_on: date | str, pre_money: Decimal | str | int,
                  raised: Decimal | str | int, brand_amount: Decimal | str | int = 0, currency: str = "USD",
                  override_reason: str | None = None, actor: str) -> dict[str, Any]:
        """Record a round; the brand's stake after it is computed, and >= 50% is refused unless overridden."""
        cur = check_currency(currency)
        series = (series or "").strip().lower()
        if not series or len(series) > 24:
            raise InvalidInput("a round needs a series name (e.g. seed, series_a), up to 24 characters",
                               code=ErrorCode.INVALID_SERIES)
        terms = RoundTerms(series, money(pre_money, field="pre_money", currency=cur),
                           money(raised, field="raised", currency=cur),
                           money(brand_amount, field="brand_amount", currency=cur))
        captable.check_terms(terms)
        closed = as_date(closed_on, field="closed_on")
        with self.dbs.global_session() as s:
            partner = self._get(s, partner_id)
            if closed < partner.founded_on:
                raise InvalidInput(f"the round is dated {closed}, before {partner_id} was founded "
                                   f"({partner.founded_on})", code=ErrorCode.ROUND_BEFORE_FOUNDING)
            if closed > utcnow().date():
                raise InvalidInput(f"the round is dated in the future ({closed})", code=ErrorCode.INVALID_DATE)
            if s.scalar(select(PartnerExit.id).where(PartnerExit.partner_id == partner_id)) is not None:
                raise Conflict(f"{partner_id} has exited; no further private rounds", code=ErrorCode.PARTNER_EXITED)
            previous = self._rounds(s, partner_id)
            if previous and closed < previous[-1].closed_on:
                raise Conflict(f"rounds are recorded in order; the last one closed on {previous[-1].closed_on}",
                               code=ErrorCode.ROUND_OUT_OF_ORDER)
            before = captable.history(_terms(r) for r in previous)
            table = captable.apply_round(before[-1] if before else captable.CapTable(), terms)
            overridden = captable.check_minority(table.brand, override_reason=override_reason)
            row = InvestmentRound(partner_id=partner_id, series=series, closed_on=closed, currency=cur,
                                  pre_money=terms.pre_money, raised=terms.raised, brand_amount=terms.brand_amount,
                                  post_money=terms.post_money, brand_stake_after=captable.stored(table.brand),
                                  actor=actor)
            s.add(row)
            s.flush()
            if overridden:
                s.add(StakeOverride(partner_id=partner_id, round_id=row.id, stake_after=row.brand_stake_after,
                                    actor=actor, reason=str(override_reason).strip()))
            if partner.kind == PartnerKind.ECOSYSTEM or table.brand > 0:
                partner.stage = series
            out = {**round_dict(row), "cap_table": {h: str(v) for h, v in table.as_percent().items()},
                   "override": str(override_reason).strip() if overridden else None}
        self.bus.publish([RoundRecorded(partner_id, row.id, str(row.brand_stake_after), overridden)])
        return out

    def rounds(self, partner_id: str, *, caller: Principal | None = None) -> builtins.list[dict[str, Any]]:
        """Rounds of a partner, oldest first."""
        check_partner(caller, partner_id)
        with self.dbs.global_session() as s:
            self._get(s, partner_id)
            return [round_dict(r) for r in self._rounds(s, partner_id)]

    def cap_table(self, partner_id: str, *, caller: Principal | None = None) -> dict[str, Any]:
        """Every holder's stake after each round (percent), recomputed from the rounds."""
        check_partner(caller, partner_id)
        with self.dbs.global_session() as s:
            self._get(s, partner_id)
            rounds = self._rounds(s, partner_id)
            exit_row = s.scalar(select(PartnerExit).where(PartnerExit.partner_id == partner_id))
        tables = captable.history(_terms(r) for r in rounds)
        steps = [{"round_id": r.id, "series": r.series, "closed_on": r.closed_on.isoformat(),
                  "post_money": str(r.post_money), "currency": r.currency,
                  "stakes_percent": {h: str(v) for h, v in t.as_percent().items()}}
                 for r, t in zip(rounds, tables, strict=True)]
        current = tables[-1] if tables else captable.CapTable()
        return {"partner_id": partner_id, "rounds": steps,
                "current_percent": {h: str(v) for h, v in current.as_percent().items()},
                "brand_percent": str(captable.percent(current.brand)),
                "exit": _exit_dict(exit_row) if exit_row else None}

    def overrides(self, partner_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """The audited exceptions to the minority rule."""
        q = select(StakeOverride).order_by(StakeOverride.id)
        if partner_id:
            q = q.where(StakeOverride.partner_id == partner_id)
        with self.dbs.global_session() as s:
            return [{"partner_id": o.partner_id, "round_id": o.round_id, "stake_after": str(o.stake_after),
                     "actor": o.actor, "reason": o.reason, "at": o.at.isoformat()} for o in s.scalars(q)]

    def record_exit(self, partner_id: str, *, kind: str, exited_on: date | str, valuation: Decimal | str | int,
                    currency: str = "USD", venue: str = "", actor: str) -> dict[str, Any]:
        """An IPO (the brand keeps its stake) or an acquisition (the stake turns into proceeds)."""
        try:
            ekind = ExitKind(kind)
        except ValueError as err:
            raise InvalidInput(f"unknown exit kind {kind!r} (ipo or acquisition)", code=ErrorCode.INVALID_KIND) from err
        cur = check_currency(currency)
        value = money(valuation, field="valuation", currency=cur, positive=True)
        when = as_date(exited_on, field="exited_on")
        with self.dbs.global_session() as s:
            partner = self._get(s, partner_id)
            if when < partner.founded_on:
                raise InvalidInput(f"the exit is dated before {partner_id} was founded",
                                   code=ErrorCode.EXIT_BEFORE_FOUNDING)
            if s.scalar(select(PartnerExit.id).where(PartnerExit.partner_id == partner_id)) is not None:
                raise Conflict(f"{partner_id} has already exited", code=ErrorCode.ALREADY_EXITED)
            rounds = self._rounds(s, partner_id)
            if rounds and when < rounds[-1].closed_on:
                raise Conflict(f"the exit predates the last round ({rounds[-1].closed_on})",
                               code=ErrorCode.EXIT_OUT_OF_ORDER)
            stake = rounds[-1].brand_stake_after if rounds else Decimal(0)
            proceeds = (stake * value).quantize(CENT) if ekind == ExitKind.ACQUISITION else None
            row = PartnerExit(partner_id=partner_id, kind=ekind, exited_on=when, valuation=value, currency=cur,
                              venue=venue[:64], brand_stake=stake, brand_proceeds=proceeds, actor=actor)
            s.add(row)
            partner.stage = "listed" if ekind == ExitKind.IPO else "acquired"
            out = _exit_dict(row)
        self.bus.publish([PartnerExited(partner_id, ekind, str(value), cur)])
        return out

    def portfolio(self, points: Valuations | None = None) -> dict[str, Any]:
        """Stake * latest valuation per partner, totals per currency (acquired stakes count as realised)."""
        points = self.valuations() if points is None else points
        rows = []
        totals: dict[str, Decimal] = defaultdict(Decimal)
        realised: dict[str, Decimal] = defaultdict(Decimal)
        for pid, events in sorted(points.items()):
            _, stake, valuation, cur, kind = events[-1]
            value = (stake * valuation).quantize(CENT)
            if kind == ExitKind.ACQUISITION:
                realised[cur] += value
                value = Decimal("0.00")
            totals[cur] += value
            rows.append({"partner_id": pid, "brand_percent": str(captable.percent(Fraction(stake))),
                         "valuation": str(valuation), "currency": cur, "value": str(value),
                         "basis": str(kind)})
        return {"partners": rows, "total": {c: str(v) for c, v in sorted(totals.items())},
                "realised": {c: str(v) for c, v in sorted(realised.items())}}

    def portfolio_history(self, points: Valuations | None = None) -> builtins.list[dict[str, Any]]:
        """Total unrealised portfolio value per currency after each date on which a round or exit happened."""
        points = self.valuations() if points is None else points
        events = sorted((when, pid, stake, valuation, cur, kind)
                        for pid, evs in points.items() for when, stake, valuation, cur, kind in evs)
        state: dict[str, tuple[Decimal, str]] = {}
        out: builtins.list[dict[str, Any]] = []
        for i, (when, pid, stake, valuation, cur, kind) in enumerate(events):
            state[pid] = (Decimal(0) if kind == ExitKind.ACQUISITION else (stake * valuation).quantize(CENT), cur)
            if i + 1 < len(events) and events[i + 1][0] == when:
                continue
            totals: dict[str, Decimal] = defaultdict(Decimal)
            for value, c in state.values():
                totals[c] += value
            out.append({"date": when.isoformat(), "partners": len(state),
                        "total": {c: str(v) for c, v in sorted(totals.items())}})
        return out

    def valuations(self) -> Valuations:
        """Per partner, (date, brand stake, valuation, currency, basis) after each round and exit, in order."""
        out: dict[str, builtins.list[tuple[date, Decimal, Decimal, str, str]]] = defaultdict(list)
        with self.dbs.global_session() as s:
            for r in s.scalars(select(InvestmentRound).order_by(InvestmentRound.closed_on, InvestmentRound.id)):
                out[r.partner_id].append((r.closed_on, r.brand_stake_after, r.post_money, r.currency, "round"))
            for e in s.scalars(select(PartnerExit)):
                out[e.partner_id].append((e.exited_on, e.brand_stake, e.valuation, e.currency, e.kind))
        return {pid: sorted(evs, key=lambda ev: (ev[0], ev[4] != "round")) for pid, evs in out.items()}


def _amount(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def _terms(r: InvestmentRound) -> RoundTerms:
    return RoundTerms(r.series, Decimal(r.pre_money), Decimal(r.raised), Decimal(r.brand_amount))


def _exit_dict(e: PartnerExit) -> dict[str, Any]:
    return {"partner_id": e.partner_id, "kind": str(e.kind), "exited_on": e.exited_on.isoformat(),
            "valuation": _amount(e.valuation), "currency": e.currency, "venue": e.venue,
            "brand_percent": str(captable.percent(Fraction(e.brand_stake))),
            "brand_proceeds": str(e.brand_proceeds) if e.brand_proceeds is not None else None, "actor": e.actor}
