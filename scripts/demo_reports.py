#!/usr/bin/env python3
"""Record the demo's certification reports: a real run of the suite per demo product, against its SDK simulator.

`python scripts/demo_reports.py` starts a hub on a temporary data dir for each product of the demo, runs every check
of the suite against the simulator over MQTT (the same run as `ecohub certify run --fast`), and writes the unsigned
report to src/ecohub/demo/reports/<model>.json. The demo signs them with its own brand key at load. Re-run it when
a demo spec or the suite changes, or before the recorded reports expire (a year after recording).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from ecohub.api.app import create_app
from ecohub.bootstrap import bootstrap
from ecohub.certify.context import Timing
from ecohub.certify.devproc import sdk_device_cmd
from ecohub.certify.domain import Declaration
from ecohub.certify.runner import RunOptions, run_suite
from ecohub.certify.target import HubUnderTest, MqttAccess
from ecohub.demo.certified import DEMO_DECLARATION
from ecohub.demo.load import DEMO_MODELS, DEMO_TARGETS, demo_spec
from ecohub.hub import free_port, running_hub
from ecohub.settings import Settings

OUT = Path(__file__).resolve().parent.parent / "src" / "ecohub" / "demo" / "reports"


async def record(model: str, root: Path) -> dict[str, object]:
    """One real run against a fresh hub; the unsigned report."""
    services = bootstrap(Settings(data_dir=root / model))
    try:
        services.products.import_spec(demo_spec(model), model=model, actor="demo-reports")
        async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=free_port()) as hub:
            assert hub.runtime.http_url and hub.runtime.mqtt_port
            token = str(hub.tokens.create(role="operator", label="demo reports")["token"])
            target = HubUnderTest(api_url=hub.runtime.http_url, token=token, origin="started",
                                  mqtt=MqttAccess(host="127.0.0.1", port=hub.runtime.mqtt_port,
                                                  password=hub.service_password),
                                  max_payload=hub.settings.mqtt.max_payload)
            options = RunOptions(model=model, markets=DEMO_TARGETS, device_cmd=sdk_device_cmd(),
                                 declaration=Declaration.from_document(DEMO_DECLARATION), timing=Timing.fast(),
                                 market_table=hub.certification.market_table())
            return await run_suite(target, options)
    finally:
        services.close()


async def main() -> int:
    OUT.mkdir(exist_ok=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="ecohub-demo-reports-") as tmp:
        for model in DEMO_MODELS:
            doc = await record(model, Path(tmp))
            bad = [f"{c['id']}: {c['reason']}" for c in doc["checks"] if c["status"] not in ("pass", "na")]  # type: ignore[attr-defined, index]
            print(f"{model}: {'passed' if doc['passed'] else 'FAILED'} {bad}")
            if not doc["passed"]:
                failed.append(model)
            (OUT / f"{model}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
