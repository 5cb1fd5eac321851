"""The demo ecosystem: a generated registry (bulk-loaded), real MIoT product specs, a fleet, an operator token."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, insert, select

from ecohub.bootstrap import Services
from ecohub.ecosystem.demo_gen import FAMILY_SPEC, SEED, DemoData, generate
from ecohub.ecosystem.models import (
    BomLine,
    Component,
    InvestmentRound,
    Listing,
    Partner,
    PartnerExit,
    Product,
    ProductMarket,
    ProductTransition,
    SpecVersion,
    StakeOverride,
    Supplier,
)
from ecohub.errors import NotFound
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
MARKER_PARTNER = "eco-001"
CHUNK = 2000
FLEET_FILE = "demo-fleet.json"
TOKEN_FILE = "demo-operator-token"


@dataclass
class DemoState:
    """What the demo loaded: models, fleet credentials and the operator token."""

    models: list[str]
    fleet: list[dict[str, str]]
    token: str


def demo_spec(model: str) -> dict[str, Any]:
    """A real miot-spec-v2 instance document shipped with ecohub."""
    return json.loads(resources.files("ecohub.ecosystem").joinpath(f"demo_specs/{model}.json").read_text())


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
                 ("listings", Listing, data.listings)]
        task = bar.add_task("demo ecosystem", total=sum(len(rows) for _, _, rows in steps))
        for label, model, rows in steps:
            bar.update(task, description=label)
            for i in range(0, len(rows), CHUNK):
                s.execute(insert(model), rows[i:i + CHUNK])
                bar.advance(task, len(rows[i:i + CHUNK]))
    return True


def load_demo(services: Services, *, devices: int) -> DemoState:
    """Load (or reuse) the demo: idempotent, so a second run keeps the data and the fleet."""
    load_registry(services)
    models = list(DEMO_MODELS)
    for model, category in DEMO_MODELS.items():
        try:
            services.products.get(model)
        except NotFound:
            services.products.import_spec(demo_spec(model), model=model, actor="demo", category=category,
                                          partner_id=DEMO_OWNERS.get(model), target_markets=DEMO_TARGETS)
    data_dir = services.settings.data_dir
    fleet_path = data_dir / FLEET_FILE
    fleet: list[dict[str, str]] = json.loads(fleet_path.read_text()) if fleet_path.exists() else []
    missing = devices - len(fleet)
    if missing > 0:
        for i in range(missing):
            model = models[(len(fleet) + i) % len(models)]
            fleet += [d.to_dict() for d in services.devices.provision(model=model, count=1)]
        _write_private(fleet_path, json.dumps(fleet, indent=1))
    token_path = data_dir / TOKEN_FILE
    if token_path.exists():
        token = token_path.read_text().strip()
    else:
        token = str(services.tokens.create(role="operator", label="demo")["token"])
        _write_private(token_path, token)
    return DemoState(models, fleet[:devices], token)
