"""Export benchmark: a user with 1M telemetry rows downloads the data-subject export zip (target < 30 s).

Builds a fresh data dir: a user in the eu cell, a home, one bound device, and N telemetry samples written with
bulk multi-row inserts the way ingest writes them (each value AES-GCM sealed with the owner's subject key).
Then times the real route, GET /api/v1/privacy/export, through the ASGI app (the zip is built in a spooled temp
file and streamed), reads the whole response, and checks the telemetry row count and the opened values.

Usage::

    python bench/export.py [--rows 1000000] [--append]   # --append adds the figure to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.bootstrap import bootstrap
from ecohub.settings import Settings
from ecohub.telemetry.service import TelemetryService

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tests" / "fixtures" / "specs" / "cuco.plug.v3.json"
PASSWORD = "correct horse battery"
CHUNK = 20_000


def run(rows: int) -> dict[str, float | int]:
    """Build the data and time one export; → the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        services = bootstrap(Settings(data_dir=Path(tmp) / "data"))
        try:
            services.products.import_spec(json.loads(SPEC.read_text()), model="acme.plug.v1", actor="bench",
                                          partner_id="acme", category="plug", target_markets=["DE"],
                                          target_price="19.90", forecast_volume=1000)
            dev = services.devices.provision(model="acme.plug.v1", cell="eu")[0]
            with TestClient(create_app(services)) as client:
                client.post("/api/v1/auth/signup", json={"email": "big@example.org", "password": PASSWORD,
                                                         "country": "DE"})
                token = client.post("/api/v1/auth/token", data={"username": "big@example.org",
                                                                "password": PASSWORD}).json()["access_token"]
                h = {"Authorization": f"Bearer {token}"}
                home = client.post("/api/v1/homes", json={"name": "Home"}, headers=h).json()["home_id"]
                client.post(f"/api/v1/homes/{home}/devices", json={"did": dev.did, "bind_code": dev.bind_code},
                            headers=h)
                start_ms = int(time.time() * 1000) + 1000
                t0 = time.perf_counter()
                with services.dbs.cell_session("eu") as s:
                    seals = services.sealer.seals(s, "eu", [dev.did])
                    assert dev.did in seals, "the bound device must be sealed with its owner's key"
                    for base in range(0, rows, CHUNK):
                        TelemetryService.append(s, [
                            {"did": dev.did, "key": "11.1" if i % 2 else "2.1", "ts": start_ms + i,
                             "value": i % 1000 if i % 2 else bool(i % 3), "msg_id": i}
                            for i in range(base, min(base + CHUNK, rows))], [], seals)
                build_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                r = client.get("/api/v1/privacy/export", headers={**h, "X-Password": PASSWORD})
                body = r.content
                export_s = time.perf_counter() - t0
            assert r.status_code == 200, r.text[:300]
            with zipfile.ZipFile(io.BytesIO(body)) as zf:
                manifest = json.loads(zf.read("manifest.json"))
                with zf.open("telemetry.csv") as f:
                    head = [line.decode().rstrip("\r\n").split(",") for _, line in zip(range(3), f, strict=False)]
        finally:
            services.close()
    assert manifest["rows"]["telemetry"] == rows, manifest["rows"]
    at = head[0].index("value")
    assert all(row[at] in ("true", "false") or row[at].isdigit() for row in head[1:]), head  # opened, not ciphertext
    return {"rows": rows, "build_s": round(build_s, 1), "export_s": round(export_s, 1),
            "zip_mb": round(len(body) / 1e6, 1)}


def append_result(figures: dict[str, float | int]) -> None:
    """Append a short section to bench/RESULTS.md (re-read right before writing: others append too)."""
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    section = (f"\n## Data-subject export (bench/export.py)\n\n"
               f"A user with {figures['rows']:,} telemetry rows (one bound device, SQLite cell file): "
               f"GET /api/v1/privacy/export returned a {figures['zip_mb']} MB zip (JSON + CSV per store) in "
               f"**{figures['export_s']} s** (target < 30 s); building the rows with bulk inserts took "
               f"{figures['build_s']} s. Reproduce: `python bench/export.py --rows {figures['rows']}`.\n")
    path.write_text(text.rstrip("\n") + "\n" + section)


def main() -> int:
    """Parse arguments, run, print, optionally append."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--append", action="store_true", help="append the figure to bench/RESULTS.md")
    args = ap.parse_args()
    figures = run(args.rows)
    print(json.dumps(figures))
    if args.append:
        append_result(figures)
    return 0 if figures["export_s"] < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
