"""Small waiting helpers for tests that talk to real sockets (poll with a deadline, never sleep blindly)."""

from __future__ import annotations

import asyncio
import atexit
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:  # noqa: ASYNC109
    """Poll `check` until it returns something truthy (or raises nothing falsy) before the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if asyncio.iscoroutine(last):
                last = await last
            if last:
                return last
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


# A complete brand definition: what a product needs to leave `defined` (spread into import_spec or a POST body).
DEFINITION: dict[str, Any] = {"category": "plug", "target_markets": ["DE", "US"], "target_price": "19.90",
                              "forecast_volume": 10_000}
# The smallest valid PNG (1x1): a design render the type check accepts.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def approve_design(services: Any, model: str, data: bytes = PNG) -> dict[str, Any]:
    """Upload a design version of `model` and approve it as the brand."""
    version = services.ecosystem.designs.upload(model, data, filename="front.png", actor="test")["version"]
    return dict(services.ecosystem.designs.decide(model, approve=True, version=version, actor="test"))


def price_for_sale(services: Any, model: str, *, bom: str = "2.69", other_cost_rate: str = "0.50",
                   margin: str = "0.03") -> None:
    """Give `model` a one-part BOM costing `bom` USD and a pricing policy under which its target price earns `margin`
    net (other costs: `other_cost_rate` of the price plus the fixed rest), so listing at the target price passes."""
    from decimal import Decimal

    supply = services.ecosystem.supply
    part = f"PART-{model}"[:64]
    if not supply.suppliers(kind="test-part"):
        supply.add_supplier(name="Test Parts", supplier_id="test-parts", country="CN", kind="test-part")
    supply.add_component(part_no=part, supplier_id="test-parts", name="part", kind="test-part", unit_cost=bom)
    supply.set_bom(model, [{"part_no": part, "quantity": 1}])
    target = Decimal(services.products.get(model).target_price)
    fixed = target * (1 - Decimal(other_cost_rate) - Decimal(margin)) - Decimal(bom)
    services.ecosystem.pricing.set_policy(model, "*", actor="test", other_cost_rate=other_cost_rate,
                                          other_cost_fixed=str(fixed.quantize(Decimal("0.0001"))))


def at_target(services: Any, model: str, market: str) -> str:
    """The product's USD target price in `market`'s currency at the brand's reference rates (inside its policy)."""
    from decimal import Decimal

    from ecohub.ecosystem.pricing import convert, minor

    currency = services.ecosystem.markets.get(market)["currency"]
    return str(convert(Decimal(services.products.get(model).target_price), "USD", currency).quantize(minor(currency)))


def walk_pages(client: Any, url: str, headers: dict[str, str], items: Callable[[Any], list[Any]] = list,
               between: Callable[[int], None] = lambda _page: None) -> tuple[list[Any], int]:
    """Every item of a cursor-paged list, following `Link: <…>; rel="next"` from page to page (`items`: the items
    of a page's body; `between(n)` runs after page n, e.g. to add items during the walk); → (items, pages)."""
    seen: list[Any] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        r = client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        seen += items(r.json())
        pages += 1
        between(pages)
        link = r.headers.get("link")
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link) if link else None
        assert link is None or match, link
        next_url = match.group(1) if match else None
        assert pages < 60
    return seen, pages


_TEMPLATE: list[Path] = []


def migrated(tmp_path: Path) -> Path:
    """`tmp_path / "data"`, holding the hub's SQLite files already migrated to head: copies of files migrated once
    per test process (running every migration of the global plane and five cells took ≈ 1.5 s, before every test
    — a third of the CI run). The copies are plain files: each test still writes only its own."""
    if not _TEMPLATE:
        from ecohub.schema import metadata_for
        from ecohub.settings import Settings
        from ecohub.store import Databases
        from ecohub.store.migrate import upgrade_all

        template = Path(tempfile.mkdtemp(prefix="ecohub-migrated-"))
        atexit.register(shutil.rmtree, template, ignore_errors=True)
        settings = Settings(data_dir=template)
        metadata_for("cell")
        dbs = Databases(settings.global_db_url(), {c: settings.cell_db_url(c) for c in settings.cells})
        upgrade_all(dbs)
        dbs.dispose()  # the last connection closed: no -wal file is left beside a database
        _TEMPLATE.append(template)
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    for db in _TEMPLATE[0].glob("*.db"):
        shutil.copyfile(db, data / db.name)
    return data
