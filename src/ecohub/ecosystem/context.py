"""The ecosystem context's services wired together (built once by bootstrap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ecohub.bus import EventBus
from ecohub.ecosystem.catalogue import CatalogueService, KpiService
from ecohub.ecosystem.channel import ListingService, MarketService
from ecohub.ecosystem.design import Audit, DesignService
from ecohub.ecosystem.events import ProductSpecChanged
from ecohub.ecosystem.partners import PartnerService
from ecohub.ecosystem.prices import PricingService
from ecohub.ecosystem.service import ProductService
from ecohub.ecosystem.supply import SupplyService
from ecohub.store import Databases


@dataclass
class Ecosystem:
    """Partners, products, supply chain, markets, channel, catalogue and KPIs."""

    products: ProductService
    partners: PartnerService
    markets: MarketService
    listings: ListingService
    supply: SupplyService
    catalogue: CatalogueService
    kpis: KpiService
    designs: DesignService
    pricing: PricingService


def build_ecosystem(dbs: Databases, bus: EventBus, products: ProductService,
                    devices_by_partner: Callable[[], dict[str, int]] | None = None, *,
                    designs_dir: Path, audit: Audit | None = None) -> Ecosystem:
    """Wire the ecosystem services around an existing ProductService (brand decisions go to `audit`)."""
    partners = PartnerService(dbs, bus)
    pricing = PricingService(dbs, audit=audit)
    listings = ListingService(dbs, bus, products, pricing)
    bus.subscribe(ProductSpecChanged, listings.on_spec_changed)
    catalogue = CatalogueService(dbs)
    return Ecosystem(products=products, partners=partners, markets=MarketService(dbs), listings=listings,
                     supply=SupplyService(dbs), catalogue=catalogue,
                     kpis=KpiService(catalogue, partners, listings, devices_by_partner, pricing=pricing),
                     designs=DesignService(dbs, designs_dir, audit=audit),
                     pricing=pricing)
