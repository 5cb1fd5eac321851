"""Cursor paging of the lists that had only `limit`: a device's events and raw telemetry, a product's certification
reports, an automation's runs and component demand. Each is walked page by page by its `Link` header while new items
arrive between pages: every item that existed when the walk began is seen exactly once, and a forged or damaged
cursor is refused with the error body (422 invalid_cursor, as on every other list)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from tests.automate.conftest import make_home
from tests.automate.test_rules_api import rule
from tests.certify.test_api import MODEL, _report
from tests.conftest import load_spec
from tests.helpers import DEFINITION, walk_pages
from tests.telemetry.conftest import write

Items = Callable[[Any], list[Any]]
FORGED = [
    "bm90LWEtY3Vyc29y",  # base64 of "not-a-cursor"
    "%%%garbled%%%",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),  # JSON, but not a position
    base64.urlsafe_b64encode(json.dumps({"t": "yesterday", "i": "one", "r": 5, "u": "x", "p": 3}).encode()).decode(),
]


def walk(client: TestClient, url: str, headers: dict[str, str], items: Items,
         between: Callable[[int], None] = lambda _page: None) -> tuple[list[Any], int]:
    """Every item of a list by its next links; `between(n)` runs after page n (adds items during the walk)."""
    return walk_pages(client, url, headers, items, between)


def refuses_forged_cursors(client: TestClient, url: str, headers: dict[str, str]) -> None:
    """Each forged or damaged cursor: 422 with the error body naming invalid_cursor, never a 500 or a page."""
    sep = "&" if "?" in url else "?"
    for forged in FORGED:
        r = client.get(f"{url}{sep}cursor={forged}", headers=headers)
        assert r.status_code == 422, (forged, r.text)
        assert r.json()["error"]["code"] == "invalid_cursor", r.text
        assert "cursor" in r.json()["error"]["message"]


@pytest.fixture
def op(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.tokens.create(role='operator', label='tests')['token']}"}


@pytest.fixture
def plug(services: Services) -> str:
    services.products.import_spec(load_spec("cuco.plug.v3"), model=MODEL, actor="test", partner_id="acme",
                                  **DEFINITION)
    return str(services.devices.provision(model=MODEL, cell="eu")[0].did)


def test_raw_telemetry_pages_back_in_time_and_keeps_its_body(client: TestClient, services: Services, plug: str,
                                                             op: dict[str, str]) -> None:
    t0 = 1_700_000_000_000
    write(services, plug, "11.2", [(t0 + i * 1000, float(i)) for i in range(23)])
    write(services, plug, "11.2", [(t0 + 5000, 99.0)])  # a second sample at one ts: the row id breaks the tie
    url = f"/api/v1/devices/{plug}/telemetry?key=11.2&since={t0}&limit=5"
    first = client.get(url, headers=op)
    body = first.json()
    assert set(body) == {"did", "key", "samples"} and body["key"] == "11.2"  # the stable shape, unchanged
    assert [s["ts"] for s in body["samples"]] == [t0 + i * 1000 for i in range(18, 23)]  # newest 5, oldest first

    def more(page: int) -> None:  # samples arriving during the walk are newer: they never enter pages to come
        write(services, plug, "11.2", [(t0 + 100_000 + page, -1.0)])

    samples, pages = walk(client, url, op, lambda b: b["samples"], more)
    assert pages == 5 and len(samples) == 24
    keyed = sorted((s["ts"], s["value"]) for s in samples)
    assert len(set(keyed)) == 24 and -1.0 not in {v for _, v in keyed}
    assert (t0 + 5000, 99.0) in keyed and (t0 + 5000, 5.0) in keyed
    whole = client.get(f"/api/v1/devices/{plug}/telemetry?key=11.2&since={t0}&until={t0 + 99_999}", headers=op)
    assert "link" not in whole.headers and len(whole.json()["samples"]) == 24
    refuses_forged_cursors(client, url, op)
    bucketed = client.get(f"{url}&bucket=1m&cursor={FORGED[0]}", headers=op)
    assert bucketed.status_code == 422 and bucketed.json()["error"]["code"] == "invalid_cursor"


def test_device_events_page_newest_first(client: TestClient, services: Services, plug: str,
                                         op: dict[str, str]) -> None:
    t0 = int(time.time() * 1000) - 100_000
    cell = plug.split("-")[0]

    def event(ts: int, n: int) -> None:
        with services.dbs.cell_session(cell) as s:
            services.telemetry.append(s, [], [{"did": plug, "siid": 5, "eiid": 1, "arguments": [n], "ts": ts,
                                               "msg_id": n}], services.sealer.seals(s, cell, [plug]))

    for n in range(11):
        event(t0 + (n // 2) * 1000, n)  # pairs share a ts
    added = iter(range(100, 200))
    events, pages = walk(client, f"/api/v1/devices/{plug}/events?limit=3", op, lambda b: b,
                         lambda _p: event(t0 + 50_000, next(added)))
    assert pages == 4 and sorted(e["msg_id"] for e in events) == list(range(11))
    assert [e["ts"] for e in events] == sorted((e["ts"] for e in events), reverse=True)
    refuses_forged_cursors(client, f"/api/v1/devices/{plug}/events?limit=3", op)


def test_certification_reports_page_newest_first(client: TestClient, services: Services, plug: str,
                                                 op: dict[str, str]) -> None:
    made = {_report(services)["report_id"] for _ in range(7)}
    url = f"/api/v1/products/{MODEL}/certification?limit=2"
    first = client.get(url, headers=op).json()
    assert set(first) == {"model", "spec_hash", "passing_markets", "reports"}
    reports, pages = walk(client, url, op, lambda b: b["reports"], lambda _p: made.add(_report(services)["report_id"]))
    ids = [r["report_id"] for r in reports]
    assert pages == 4 and len(ids) == len(set(ids)) == 7 and set(ids) < made
    created = [r["created"] for r in reports]
    assert created == sorted(created, reverse=True)
    refuses_forged_cursors(client, url, op)


def test_automation_runs_page_newest_first(client: TestClient, services: Services) -> None:
    home = make_home(client, services)
    r = client.post(f"/api/v1/homes/{home.home_id}/automations", json=rule(home), headers=home.headers)
    assert r.status_code == 201, r.text
    rule_id = r.json()["rule_id"]

    def runs(n: int) -> None:
        services.automations.record_runs("eu", [{"rule_id": rule_id, "ts_ms": 1_700_000_000_000 + i,
                                                 "outcome": "conditions_false", "trigger": {"n": i},
                                                 "conditions": None, "actions": None, "duration_ms": 1}
                                                for i in range(n)])

    runs(9)
    url = f"/api/v1/automations/{rule_id}/runs?limit=4"
    seen, pages = walk(client, url, home.headers, lambda b: b, lambda _p: runs(1))
    assert pages == 3 and [x["trigger"]["n"] for x in seen] == list(range(8, -1, -1))
    refuses_forged_cursors(client, url, home.headers)


def test_demand_pages_by_units_then_part_number(client: TestClient, services: Services, op: dict[str, str]) -> None:
    supply = services.ecosystem.supply
    services.products.import_spec(load_spec("cuco.plug.v3"), model=MODEL, actor="test", partner_id="acme",
                                  **DEFINITION)
    supply.add_supplier(name="Espressif", supplier_id="espressif", country="CN", kind="wifi-module")
    quantities = {f"P-{i:02d}": 1 + i % 3 for i in range(10)}  # ties in units: the part number orders them
    for part in [*quantities, "LATE-1", "LATE-2"]:
        supply.add_component(part_no=part, supplier_id="espressif", name=part, kind="wifi-module", unit_cost="1")
    supply.set_bom(MODEL, [{"part_no": p, "quantity": q} for p, q in quantities.items()])
    stage = services.products.get(MODEL).stage
    url = f"/api/v1/demand?stage={stage}&limit=3"
    bom = [{"part_no": p, "quantity": q} for p, q in quantities.items()]
    late = iter(["LATE-1", "LATE-2"])

    def add_line(page: int) -> None:  # a component newly needed during the walk, in the most units: it ranks on
        if page <= 2:                   # a page already read and shifts none of the pages still to come
            bom.append({"part_no": next(late), "quantity": 3})
            supply.set_bom(MODEL, bom)

    lines, pages = walk(client, url, op, lambda b: b, add_line)
    parts = [x["part_no"] for x in lines]
    assert sorted(parts) == sorted(quantities) and len(parts) == len(set(parts)) == 10
    order = [(-x["annual_units"], x["part_no"]) for x in lines]
    assert order == sorted(order) and pages == 4
    refuses_forged_cursors(client, url, op)
