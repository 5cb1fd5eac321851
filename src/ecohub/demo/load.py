"""The demo ecosystem: a generated registry (bulk-loaded), real MIoT product specs, a fleet, an operator token."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, insert, select

from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.demo.certified import certify_and_list, fresh_report
from ecohub.demo.generate import DEMO_POLICY, DEMO_RENDER, FAMILY_SPEC, SEED, DemoData, generate
from ecohub.ecosystem.models import (
    BomLine,
    Component,
    DesignVersion,
    InvestmentRound,
    Listing,
    Partner,
    PartnerExit,
    PricingPolicy,
    Product,
    ProductMarket,
    ProductTransition,
    SpecVersion,
    StakeOverride,
    Supplier,
)
from ecohub.ecosystem.pricing import price_for_margin
from ecohub.errors import Conflict, EcohubError, InvalidInput, NotFound
from ecohub.hub import AppFactory
from ecohub.spec import parse_spec

DEMO_MODELS = {
    "cuco.plug.v3": "plug",
    "yeelink.light.spot2": "light",
    "miaomiaoce.sensor_ht.t9": "sensor",
    "zhimi.airp.rmb1": "air-purifier",
    "xiaomi.sensor_ht.new3pr": "sensor",
    "miaomiaoce.airm.co2": "air-monitor",
}
# The real products belong to generated partners and target a few markets (set only when first imported).
DEMO_OWNERS = {"cuco.plug.v3": "eco-001", "yeelink.light.spot2": "eco-002", "miaomiaoce.sensor_ht.t9": "eco-003",
               "zhimi.airp.rmb1": "eco-004", "xiaomi.sensor_ht.new3pr": "eco-003", "miaomiaoce.airm.co2": "eco-003"}
DEMO_TARGETS = ["CN", "DE", "FR", "GB", "IN", "US"]
DEMO_VOLUME = 200_000  # forecast units a year of each real product
DEMO_BOM_KINDS = ("mcu", "wifi-module", "pcb", "enclosure", "psu")
MARKER_PARTNER = "eco-001"
CHUNK = 2000
FLEET_FILE = "demo-fleet.json"
TOKEN_FILE = "demo-operator-token"
DEMO_EMAIL = "demo@ecohub.example"
DEMO_PASSWORD = "ecohub-demo-home"  # a demo account on a local hub, printed on purpose
DEMO_COUNTRY = "DE"
DEMO_HOME = "Demo home"
DEMO_ROOMS = ["Living room", "Kitchen", "Bedroom", "Office", "Hallway"]


@dataclass
class DemoState:
    """What the demo loaded: models, fleet credentials and the operator token."""

    models: list[str]
    fleet: list[dict[str, str]]
    token: str
    user: DemoUser | None = None
    listed: int = 0  # listings of the certified demo products (nothing else is on sale)


@dataclass
class DemoUser:
    """The demo end user: sign-in details, their home, and whether an automation was set up."""

    email: str
    password: str
    user_id: str
    cell: str
    home_id: str
    bound: int
    automation: str | None = None


def demo_spec(model: str) -> dict[str, Any]:
    """A real miot-spec-v2 instance document shipped with ecohub."""
    return json.loads(resources.files("ecohub.demo").joinpath(f"specs/{model}.json").read_text())


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def build_demo_data(services: Services, *, seed: int = SEED) -> DemoData:
    """Generate the demo registry for this hub's markets and taxonomy (deterministic for a given seed)."""
    eco = services.ecosystem
    categories = [(c["slug"], c["family"]) for c in eco.catalogue.categories()]
    markets = [{"code": m["code"], "currency": m["currency"]} for m in eco.markets.list()]
    specs = {m: demo_spec(m) for m in sorted(set(FAMILY_SPEC.values()) | {"cuco.plug.v3"})}
    hashes = {m: parse_spec(doc).hash for m, doc in specs.items()}
    return generate(categories, markets, hashes, specs, seed=seed)


def load_registry(services: Services, *, seed: int = SEED, progress: bool = True) -> bool:
    """Bulk-load the generated registry in one transaction; False (and nothing written) when it is already there."""
    if services.ecosystem.partners.exists(MARKER_PARTNER):
        return False
    data = build_demo_data(services, seed=seed)
    versions = [{"model": p["model"], "version": 1, "spec": p["spec"], "spec_hash": p["spec_hash"]}
                for p in data.products]
    columns = [TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True, disable=not progress) as bar, services.dbs.global_session() as s:
        offset = s.scalar(select(func.max(InvestmentRound.id))) or 0
        rounds = [{**r, "id": r["id"] + offset} for r in data.rounds]
        overrides = [{**o, "round_id": o["round_id"] + offset} for o in data.overrides]
        steps = [("partners", Partner, data.partners), ("rounds", InvestmentRound, rounds),
                 ("stake overrides", StakeOverride, overrides), ("exits", PartnerExit, data.exits),
                 ("suppliers", Supplier, data.suppliers), ("components", Component, data.components),
                 ("products", Product, data.products), ("spec versions", SpecVersion, versions),
                 ("target markets", ProductMarket, data.product_markets),
                 ("transitions", ProductTransition, data.transitions), ("BOM lines", BomLine, data.bom_lines),
                 ("listings", Listing, data.listings), ("designs", DesignVersion, data.designs),
                 ("pricing policy", PricingPolicy, data.policies)]
        services.ecosystem.designs.store(DEMO_RENDER)  # the approved render the generated designs point at
        task = bar.add_task("demo ecosystem", total=sum(len(rows) for _, _, rows in steps))
        for label, model, rows in steps:
            bar.update(task, description=label)
            for i in range(0, len(rows), CHUNK):
                s.execute(insert(model), rows[i:i + CHUNK])
                bar.advance(task, len(rows[i:i + CHUNK]))
    return True


def load_demo(services: Services, *, devices: int, app_factory: AppFactory | None = None) -> DemoState:
    """Load (or reuse) the demo: idempotent, so a second run keeps the data and the fleet. With `app_factory` (the
    HTTP app, which the demo may not import), a demo product whose recorded report expired is certified by a real
    run of the suite made now; without it, such a product stays at certification."""
    load_registry(services)

    def rerun(model: str) -> dict[str, Any] | None:
        assert app_factory is not None
        return fresh_report(model, demo_spec(model), DEMO_TARGETS, category=DEMO_MODELS[model],
                            app_factory=app_factory)

    models = list(DEMO_MODELS)
    for model, category in DEMO_MODELS.items():
        try:
            services.products.get(model)
        except NotFound:
            bom = _demo_bom(services)
            services.products.import_spec(demo_spec(model), model=model, actor="demo", category=category,
                                          partner_id=DEMO_OWNERS.get(model), target_markets=DEMO_TARGETS,
                                          target_price=_demo_price(bom), forecast_volume=DEMO_VOLUME)
            services.ecosystem.supply.set_bom(model, bom)
            designs = services.ecosystem.designs  # the brand approved the industrial design before certification
            designs.upload(model, DEMO_RENDER, filename="front.png", kind="render", actor="demo", note="demo seed")
            designs.decide(model, approve=True, actor="demo", note="demo seed")
        # on sale only through the gate: a recorded real run of the suite, evidence, approval, launch, listings
        certify_and_list(services, model, DEMO_TARGETS, rerun=rerun if app_factory is not None else None)
    data_dir = services.settings.data_dir
    fleet_path = data_dir / FLEET_FILE
    fleet: list[dict[str, str]] = json.loads(fleet_path.read_text()) if fleet_path.exists() else []
    missing = devices - len(fleet)
    if missing > 0:
        start = len(fleet)  # the fleet grows in the loop: cycle the models from where it stood
        for i in range(missing):
            model = models[(start + i) % len(models)]
            fleet += [d.to_dict() for d in services.devices.provision(model=model, count=1)]
        _write_private(fleet_path, json.dumps(fleet, indent=1))
    user = load_demo_home(services, fleet[:devices])
    token_path = data_dir / TOKEN_FILE
    if token_path.exists():
        token = token_path.read_text().strip()
    else:
        token = str(services.tokens.create(role="operator", label="demo")["token"])
        _write_private(token_path, token)
    listed = sum(len(services.ecosystem.listings.list(model=m)) for m in models)
    return DemoState(models, fleet[:devices], token, user, listed)


def _demo_bom(services: Services) -> list[dict[str, Any]]:
    """A bill of materials from the generated suppliers' most popular parts (the supply views count it)."""
    supply = services.ecosystem.supply
    lines = []
    for kind in DEMO_BOM_KINDS:
        parts = supply.components(kind=kind)
        if parts:
            lines.append({"part_no": parts[0]["part_no"], "quantity": 1, "unit_cost": parts[0]["unit_cost"]})
    return lines


def _demo_price(bom: list[dict[str, Any]]) -> Decimal:
    """The USD target price at which a real product keeps the brand's pricing policy (a 3 % net margin)."""
    cost = sum((Decimal(str(x["unit_cost"])) * x["quantity"] for x in bom), Decimal(0))
    return price_for_margin(Decimal("0.03"), cost, DEMO_POLICY).quantize(Decimal("0.01"))


def _demo_principal(services: Services) -> Principal:
    """The demo user (signed up once, in DEMO_COUNTRY's cell)."""
    found = services.home.accounts.locate(DEMO_EMAIL)
    if found is None:
        created = services.home.accounts.signup(email=DEMO_EMAIL, password=DEMO_PASSWORD, country=DEMO_COUNTRY)
        found = created["cell"], created["user_id"]
    cell, user_id = found
    return Principal(Role.USER, user_id, cell=cell)


def load_demo_home(services: Services, fleet: list[dict[str, str]]) -> DemoUser:
    """The demo user's home with rooms, the fleet's devices of the user's cell claimed into it, and an automation."""
    p = _demo_principal(services)
    homes = services.home.homes
    home_id = next((h["home_id"] for h in homes.of_user(p) if h["name"] == DEMO_HOME), None)
    if home_id is None:
        home_id = homes.create(p, DEMO_HOME)["home_id"]
    rooms = {r["name"]: r["room_id"] for r in homes.get(p, home_id)["rooms"]}
    for name in DEMO_ROOMS:
        if name not in rooms:
            rooms[name] = homes.add_room(p, home_id, name)["room_id"]
    bound = {a.did for a in homes.accessible_devices(p, home_id)}
    counts: dict[str, int] = {}
    for i, dev in enumerate(fleet):
        kind = DEMO_MODELS.get(dev["model"], "device")
        counts[kind] = counts.get(kind, 0) + 1
        if dev["did"] in bound or dev.get("cell", p.cell) != p.cell:
            continue
        room = DEMO_ROOMS[i % len(DEMO_ROOMS)]
        try:
            services.home.bindings.claim(p, home_id, did=dev["did"], code=dev["bind_code"], room_id=rooms[room],
                                         name=f"{kind.replace('-', ' ').capitalize()} {counts[kind]}")
        except (Conflict, InvalidInput):  # bound elsewhere or its printed code was used: leave it to the fleet view
            continue
        bound.add(dev["did"])
    return DemoUser(DEMO_EMAIL, DEMO_PASSWORD, p.subject, p.cell or "", home_id, len(bound),
                    _demo_automation(services, p, home_id, fleet))


def _demo_automation(services: Services, p: Principal, home_id: str, fleet: list[dict[str, str]]) -> str | None:
    """"When plug 1 is switched on, switch light 1 on" — only when this build has automations."""
    automations = getattr(services, "automations", None)
    plug = next((d["did"] for d in fleet if d["model"] == "cuco.plug.v3"), None)
    light = next((d["did"] for d in fleet if d["model"] == "yeelink.light.spot2"), None)
    if automations is None or plug is None or light is None:
        return None
    name = "Plug 1 on → light 1 on"
    try:
        if not any(r.get("name") == name for r in automations.of_home(p, home_id)):
            automations.create(p, home_id, {
                "name": name,
                "triggers": [{"type": "property", "did": plug, "prop": "switch.on", "op": "==", "value": True}],
                "actions": [{"type": "set", "did": light, "values": {"light.on": True}}]})
    except EcohubError:  # the automations context is still changing; the demo runs without a rule rather than fail
        return None
    return name
