#!/usr/bin/env python3
"""Record the demo's certification reports: a real run of the suite per demo product, against its SDK simulator.

`python scripts/demo_reports.py` starts a hub on a temporary data dir for each product of the demo, runs every check
of the suite against the simulator over MQTT (the same run as `ecohub certify run --fast`), and writes the unsigned
report to src/ecohub/demo/reports/<model>.json. The demo signs them with its own brand key at load. Re-run it when
a demo spec or the suite changes, or before the recorded reports expire (a year after recording; `ecohub demo`
runs the suite again at load for a product whose recorded report expired).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from ecohub.api.app import create_app
from ecohub.demo.certified import record_report
from ecohub.demo.load import DEMO_MODELS, DEMO_TARGETS, demo_spec

OUT = Path(__file__).resolve().parent.parent / "src" / "ecohub" / "demo" / "reports"


async def record(model: str, root: Path) -> dict[str, object]:
    """One real run against a fresh hub; the unsigned report."""
    return await record_report(model, demo_spec(model), DEMO_TARGETS, root, category=DEMO_MODELS[model],
                               app_factory=create_app)


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
