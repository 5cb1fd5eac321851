"""Deterministic demo ecosystem generator (pure): ~120 partners with rounds, >= 2,000 products in the pipeline,
suppliers (no listings: only certified products are sold, see demo/certified.py)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from ecohub.ecosystem import captable
from ecohub.ecosystem.design import design_ref
from ecohub.ecosystem.domain import SERIES, Stage, path_to
from ecohub.ecosystem.pricing import Policy, convert, minor, price_for_margin

SEED = 2020
ECOSYSTEM_PARTNERS = 105
DEVELOPERS = 15
PRODUCTS = 2040
SUPPLIERS = 40
TODAY = date(2025, 12, 31)
# Stage mix of generated products (weights). None is approved, launched or listed: going on sale takes a real
# certification report and valid evidence (the demo's real products get them, see demo/certified.py), and a generated
# product has neither. Retired ones were dropped during development.
STAGE_MIX = {Stage.CONCEPT: 8, Stage.DEFINED: 12, Stage.IN_DEVELOPMENT: 30, Stage.CERTIFICATION: 30,
             Stage.REJECTED: 8, Stage.DISCONTINUED: 12}
# One real spec per category family (the generated products share them; the fleet runs the real ones).
FAMILY_SPEC = {"power": "cuco.plug.v3", "lighting": "yeelink.light.spot2", "sensing": "xiaomi.sensor_ht.new3pr",
               "air": "zhimi.airp.rmb1", "climate": "miaomiaoce.sensor_ht.t9", "health": "miaomiaoce.airm.co2"}
DEFAULT_SPEC = "cuco.plug.v3"
HOME_COUNTRIES = ["CN"] * 12 + ["US", "DE", "IN", "JP", "KR", "SG", "GB", "FR", "TW", "IL", "SE", "NL"]
SYLLABLES = ["zhi", "mi", "lu", "yun", "ka", "ro", "qi", "tan", "bo", "xin", "ling", "feng", "hua", "da", "an",
             "ke", "pu", "sen", "tuo", "wei", "jia", "nuo", "li", "mo", "su", "ya", "chen", "hao", "rui", "xi"]
SUFFIXES = ["Technology", "Intelligent", "Robotics", "Home", "Labs", "Innovation", "Electronics", "Devices"]
SUPPLY_KINDS = {"mcu": (0.6, 2.5), "wifi-module": (1.1, 3.2), "ble-module": (0.7, 2.0), "zigbee-module": (1.2, 3.5),
                "sensor": (0.3, 6.0), "battery": (0.8, 12.0), "motor": (1.5, 18.0), "psu": (0.9, 6.5),
                "pcb": (0.2, 2.2), "enclosure": (0.5, 9.0)}
# The brand-wide pricing settings of the demo: 40 % of the price covers channel, logistics, warranty and marketing.
DEMO_POLICY = Policy(other_cost_rate=Decimal("0.40"))
DEMO_RENDER = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                            "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
DEMO_RENDER_SHA256 = hashlib.sha256(DEMO_RENDER).hexdigest()


@dataclass
class DemoData:
    """Rows per table, ready for bulk insert (dicts keyed by column name)."""

    partners: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    designs: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    suppliers: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    product_markets: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    bom_lines: list[dict[str, Any]] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)


def _name(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    while True:
        stem = "".join(rng.sample(SYLLABLES, rng.choice([2, 2, 3])))
        if stem not in taken:
            taken.add(stem)
            return stem, f"{stem.capitalize()} {rng.choice(SUFFIXES)}"


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _partners(rng: random.Random, data: DemoData) -> dict[str, str]:
    """Partners with rounds (minority stakes computed, one audited override) and a few exits; id → brand stem."""
    taken: set[str] = set()
    stems: dict[str, str] = {}
    for i in range(ECOSYSTEM_PARTNERS + DEVELOPERS):
        developer = i >= ECOSYSTEM_PARTNERS
        pid = f"dev-{i - ECOSYSTEM_PARTNERS + 1:03d}" if developer else f"eco-{i + 1:03d}"
        stem, name = _name(rng, taken)
        stems[pid] = stem
        founded = _day(rng, date(2008, 1, 1), date(2021, 12, 31))
        row = {"id": pid, "name": name, "kind": "developer" if developer else "ecosystem",
               "country": rng.choice(HOME_COUNTRIES), "founded_on": founded, "status": "active",
               "stage": "developer" if developer else "prospect", "contact_role": "partnerships",
               "contact_email": f"partners@{stem}.example"}
        data.partners.append(row)
        if not developer:
            _rounds(rng, data, row, force_override=(i == 6))
    return stems


def _rounds(rng: random.Random, data: DemoData, partner: dict[str, Any], *, force_override: bool) -> None:
    table = captable.CapTable()
    when: date = partner["founded_on"]
    pre = Decimal(rng.randrange(2, 20) * 1_000_000)
    series_idx = rng.randrange(0, 3)
    for _ in range(rng.randint(1, 4)):
        when = _day(rng, when + timedelta(days=150), when + timedelta(days=700))
        if when > TODAY - timedelta(days=30) or series_idx >= len(SERIES) - 1:
            break
        raised = (pre * Decimal(rng.choice([15, 20, 25, 30, 40])) / 100).quantize(Decimal(1))
        brand = (raised * Decimal(rng.choice([0, 20, 35, 50, 70, 100])) / 100).quantize(Decimal(1))
        if force_override and not table.stakes.get(captable.BRAND):  # one audited majority, to show the override
            raised = brand = pre * Decimal("1.2")
        terms = captable.RoundTerms(SERIES[series_idx], pre, raised, brand)
        after = captable.apply_round(table, terms)
        reason = None
        if after.brand >= captable.MINORITY_LIMIT:
            if force_override:
                reason = "demo: board-approved strategic majority for a joint venture"
            else:
                terms = captable.RoundTerms(terms.series, pre, raised, Decimal(0))
                after = captable.apply_round(table, terms)
        table = after
        rid = len(data.rounds) + 1
        stake = captable.stored(table.brand)
        data.rounds.append({"id": rid, "partner_id": partner["id"], "series": terms.series, "closed_on": when,
                            "currency": "USD", "pre_money": pre, "raised": raised, "brand_amount": terms.brand_amount,
                            "post_money": terms.post_money, "brand_stake_after": stake, "actor": "demo"})
        if reason:
            data.overrides.append({"partner_id": partner["id"], "round_id": rid, "stake_after": stake,
                                   "actor": "demo", "reason": reason})
        partner["stage"] = terms.series
        pre = (terms.post_money * Decimal(rng.choice([15, 20, 25, 30])) / 10).quantize(Decimal(1))
        series_idx += 1
    if data.rounds and data.rounds[-1]["partner_id"] == partner["id"] and rng.random() < 0.1:
        last = data.rounds[-1]
        kind = "ipo" if rng.random() < 0.7 else "acquisition"
        valuation = (last["post_money"] * Decimal(rng.choice([2, 3, 5, 8]))).quantize(Decimal("0.01"))
        stake = last["brand_stake_after"]
        data.exits.append({"partner_id": partner["id"], "kind": kind,
                           "exited_on": _day(rng, last["closed_on"] + timedelta(days=60), TODAY),
                           "valuation": valuation, "currency": "USD",
                           "venue": rng.choice(["STAR Market", "HKEX", "NASDAQ"]) if kind == "ipo" else "",
                           "brand_stake": stake, "actor": "demo",
                           "brand_proceeds": (stake * valuation).quantize(Decimal("0.01"))
                           if kind == "acquisition" else None})
        partner["stage"] = "listed" if kind == "ipo" else "acquired"


def _supply(rng: random.Random, data: DemoData) -> dict[str, list[str]]:
    """Suppliers and their components; returns part numbers per component kind (popular suppliers first)."""
    taken: set[str] = set()
    by_kind: dict[str, list[str]] = {k: [] for k in SUPPLY_KINDS}
    kinds = list(SUPPLY_KINDS)
    for i in range(SUPPLIERS):
        stem, _ = _name(rng, taken)
        kind = kinds[i % len(kinds)]
        sid = f"sup-{i + 1:03d}"
        data.suppliers.append({"id": sid, "name": f"{stem.capitalize()} {kind.replace('-', ' ').title()} Co.",
                               "country": rng.choice(["CN", "CN", "CN", "TW", "JP", "KR", "US", "DE"]), "kind": kind})
        low, high = SUPPLY_KINDS[kind]
        for j in range(rng.randint(2, 5)):
            part = f"{stem[:4].upper()}-{kind[:3].upper()}-{j + 1:02d}"
            cost = Decimal(str(round(rng.uniform(low, high), 4)))
            data.components.append({"part_no": part, "supplier_id": sid, "name": f"{kind} {stem}-{j + 1}",
                                    "kind": kind, "unit_cost": cost, "currency": "USD"})
            by_kind[kind].append(part)
    return by_kind


def _pick(rng: random.Random, parts: list[str]) -> str:
    """Popular suppliers first: the brand's negotiating power comes from a few shared suppliers."""
    return rng.choices(parts, weights=[1 / (i + 1) ** 1.5 for i in range(len(parts))])[0]


def _path_to(stage: Stage) -> list[Stage]:
    """The lifecycle steps from concept to `stage` (a rejection comes out of certification)."""
    if stage == Stage.REJECTED:
        return [*path_to(Stage.CONCEPT, Stage.CERTIFICATION), Stage.REJECTED]
    if stage == Stage.DISCONTINUED:  # dropped in development: it never passed the gate
        return [*path_to(Stage.CONCEPT, Stage.IN_DEVELOPMENT), Stage.DISCONTINUED]
    return path_to(Stage.CONCEPT, stage)


def local_price(usd: Decimal, currency: str) -> Decimal:
    """The USD target price in a market's currency at the brand's reference rates, in its minor units."""
    return convert(usd, "USD", currency).quantize(minor(currency), rounding=ROUND_HALF_EVEN)


def generate(categories: list[tuple[str, str]], markets: list[dict[str, str]], spec_hashes: dict[str, str],
             specs: dict[str, Any], *, seed: int = SEED) -> DemoData:
    """The whole demo data set, a pure function of its inputs and the seed."""
    rng = random.Random(seed)
    data = DemoData()
    stems = _partners(rng, data)
    parts = _supply(rng, data)
    unit_cost = {c["part_no"]: c["unit_cost"] for c in data.components}
    data.policies.append({"model": "*", "market": "*", "other_cost_rate": DEMO_POLICY.other_cost_rate,
                          "actor": "demo"})
    cats = [c for c in categories if c[0] != "uncategorised"]
    market_codes = [m["code"] for m in markets]
    partner_ids = [p["id"] for p in data.partners]
    weights = [6 if pid.startswith("eco") else 1 for pid in partner_ids]
    specialty = {pid: rng.sample(cats, 3) for pid in partner_ids}
    country = {p["id"]: p["country"] for p in data.partners}
    stages, stage_w = list(STAGE_MIX), list(STAGE_MIX.values())
    serial: dict[str, int] = {}
    for _ in range(PRODUCTS):
        pid = rng.choices(partner_ids, weights)[0]
        slug, family = rng.choice(specialty[pid])
        n = serial[f"{pid}.{slug}"] = serial.get(f"{pid}.{slug}", 0) + 1
        model = f"{stems[pid]}.{slug}.v{n}"
        spec_model = FAMILY_SPEC.get(family, DEFAULT_SPEC)
        stage = rng.choices(stages, stage_w)[0]
        radio = rng.choice(["wifi-module", "ble-module", "zigbee-module"])
        lines = {_pick(rng, parts[kind]): 1 for kind in ("mcu", radio, "pcb", "enclosure")}
        for kind in rng.sample(["sensor", "battery", "motor", "psu"], rng.randint(1, 2)):
            lines[_pick(rng, parts[kind])] = rng.randint(1, 3)
        bom = sum((unit_cost[p] * q for p, q in lines.items()), Decimal(0))
        # the target price keeps the brand's policy: a net margin between 1 % and 4 % after the other costs
        price = price_for_margin(Decimal(rng.randint(10, 40)) / 1000, bom, DEMO_POLICY).quantize(Decimal("0.01"))
        defined = stage not in (Stage.CONCEPT,)
        designed = stage in (Stage.APPROVED, Stage.LAUNCHED, Stage.DISCONTINUED)
        data.products.append({
            "model": model, "partner_id": pid, "category": slug, "name": f"{stems[pid].capitalize()} {slug} {n}",
            "stage": stage, "spec": specs[spec_model], "spec_hash": spec_hashes[spec_model], "spec_version": 1,
            "design_ref": design_ref(1, DEMO_RENDER_SHA256) if designed else "",
            "target_price": price if defined else None, "price_currency": "USD",
            "forecast_volume": rng.randrange(5, 500) * 1000 if defined else 0})
        if designed:
            data.designs.append({"model": model, "version": 1, "kind": "render", "filename": "front.png",
                                 "media_type": "image/png", "size": len(DEMO_RENDER), "sha256": DEMO_RENDER_SHA256,
                                 "note": "demo seed", "status": "approved", "uploaded_by": "demo",
                                 "decided_by": "demo", "decision_note": "demo seed"})
        targets = sorted({country[pid], "CN", *rng.sample(market_codes, rng.randint(2, 24))})
        data.product_markets += [{"model": model, "market": m} for m in targets]
        moved = datetime.combine(_day(rng, date(2019, 1, 1), date(2023, 1, 1)), time(9), UTC)
        data.transitions.append({"model": model, "from_stage": None, "to_stage": Stage.CONCEPT, "actor": "demo",
                                 "reason": "demo seed", "at": moved})
        prev: str = Stage.CONCEPT
        for step in _path_to(stage):
            moved += timedelta(days=rng.randint(20, 120))
            data.transitions.append({"model": model, "from_stage": prev, "to_stage": step, "actor": "demo",
                                     "reason": "demo seed", "at": moved})
            prev = step
        data.bom_lines += [{"model": model, "part_no": p, "quantity": q} for p, q in lines.items()]
    return data


def brand_stake_is_minority(data: DemoData) -> bool:
    """Every generated round leaves the brand below 50% except the audited overrides."""
    overridden = {o["round_id"] for o in data.overrides}
    return all(Fraction(r["brand_stake_after"]) < captable.MINORITY_LIMIT or r["id"] in overridden
               for r in data.rounds)
