"""The demo ecosystem: real MIoT product specs, a simulated fleet's credentials, an operator token."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ecohub.bootstrap import Services
from ecohub.errors import NotFound

DEMO_MODELS = {
    "cuco.plug.v3": "plug",
    "yeelink.light.spot2": "light",
    "miaomiaoce.sensor_ht.t9": "sensor",
    "zhimi.airp.rmb1": "air-purifier",
    "xiaomi.sensor_ht.new3pr": "sensor",
    "miaomiaoce.airm.co2": "air-monitor",
}
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


def load_demo(services: Services, *, devices: int) -> DemoState:
    """Load (or reuse) the demo: idempotent, so a second run keeps the data and the fleet."""
    models = list(DEMO_MODELS)
    for model, category in DEMO_MODELS.items():
        try:
            services.products.get(model)
        except NotFound:
            services.products.import_spec(demo_spec(model), model=model, actor="demo", category=category)
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
