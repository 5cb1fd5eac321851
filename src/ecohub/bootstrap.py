"""The composition root: bootstrap(settings) builds engines and services; API, CLI and workers all call it."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from ecohub.apps import privacy as apps_privacy
from ecohub.apps.service import AppsContext
from ecohub.automate import privacy as automate_privacy
from ecohub.automate.service import AutomationService
from ecohub.bus import EventBus
from ecohub.certify.events import EvidenceChanged, ReportRecorded
from ecohub.certify.service import CertificationService
from ecohub.connect import privacy as connect_privacy
from ecohub.connect.commands import CommandLink, CommandService
from ecohub.connect.ingest import IngestWorker
from ecohub.connect.pipeline import Pipeline
from ecohub.connect.plane import INGEST_DURABLE, DevicePlane
from ecohub.connect.service import DeadLetterService, DeviceService
from ecohub.ecosystem.channel import MarketService
from ecohub.ecosystem.context import Ecosystem, build_ecosystem
from ecohub.ecosystem.service import ProductService
from ecohub.errors import NotFound
from ecohub.home import privacy as home_privacy
from ecohub.home.service import HomeContext, TokenService
from ecohub.netguard import UrlPolicy
from ecohub.notify import privacy as notify_privacy
from ecohub.notify.service import NotificationService
from ecohub.ota import privacy as ota_privacy
from ecohub.ota.engine import OtaEngine
from ecohub.ota.firmware import FirmwareService
from ecohub.ota.service import CampaignService
from ecohub.ota.store import DirStore, ImageStore, S3Store
from ecohub.privacy.crypto import CellKeys, SubjectKeys
from ecohub.privacy.registry import DataRegistry
from ecohub.privacy.sealing import PayloadSealer
from ecohub.privacy.service import PrivacyContext
from ecohub.schema import metadata_for
from ecohub.security import privacy as security_privacy
from ecohub.security.context import SecurityContext
from ecohub.settings import Settings
from ecohub.store import Databases
from ecohub.store.migrate import upgrade_all
from ecohub.telemetry import privacy as telemetry_privacy
from ecohub.telemetry.partitions import Partitions
from ecohub.telemetry.retention import Retention
from ecohub.telemetry.service import TelemetryService
from ecohub.twin import privacy as twin_privacy
from ecohub.twin.service import TwinService


@dataclass
class Runtime:
    """What a running hub exposes (filled in by `ecohub up`)."""

    http_url: str | None = None
    mqtt_host: str | None = None
    mqtt_port: int | None = None


@dataclass
class Services:
    """Every service of the hub, wired once."""

    settings: Settings
    dbs: Databases
    bus: EventBus
    products: ProductService
    ecosystem: Ecosystem
    devices: DeviceService
    dead_letters: DeadLetterService
    twin: TwinService
    telemetry: TelemetryService
    tokens: TokenService
    home: HomeContext
    certification: CertificationService
    service_password: str
    automations: AutomationService
    privacy: PrivacyContext
    security: SecurityContext
    firmware: FirmwareService
    campaigns: CampaignService
    apps: AppsContext
    notifications: NotificationService
    command_link: CommandLink = field(default_factory=CommandLink)
    plane: DevicePlane | None = None  # the device plane once a hub or API process started or attached it
    runtime: Runtime = field(default_factory=Runtime)
    workers: list[IngestWorker] = field(default_factory=list)
    ota_engine: OtaEngine | None = None  # the firmware campaign engine once a hub process runs one

    @property
    def commands(self) -> CommandService | None:
        """This process's command sender (None until a hub or API process connected to the broker)."""
        return self.command_link.service

    @commands.setter
    def commands(self, service: CommandService | None) -> None:
        self.command_link.service = service

    @property
    def sealer(self) -> PayloadSealer:
        """Seals a bound device's payloads with its owner's key (ingest and direct writers use it)."""
        return self.privacy.sealer

    def pipeline(self) -> Pipeline:
        """A fresh ingest pipeline bound to these services."""
        return Pipeline(
            max_payload=self.settings.mqtt.max_payload,
            model_of=self.devices.model_of,
            cached_models=self.devices.cached_models,
            read_models=self.devices.read_models,
            compiled_of=self.products.compiled,
            cell_of=self.devices.cell_of,
            default_cell=self.settings.default_cell,
        )

    def ingest_worker(self, nc: NATS, *, name: str = "ecohub-ingest", durable: str = INGEST_DURABLE,
                      batch_size: int | None = None, batch_ms: float | None = None) -> IngestWorker:
        """An ingest worker on the shared durable consumer; batching from the settings unless given."""
        cfg = self.settings.ingest
        return IngestWorker(dbs=self.dbs, pipeline=self.pipeline(), bus=self.bus, sealer=self.sealer, nc=nc,
                            durable=durable, name=name, stage=self.apps.push.stage,
                            batch_size=cfg.batch_size if batch_size is None else batch_size,
                            batch_ms=cfg.batch_ms if batch_ms is None else batch_ms)

    def close(self) -> None:
        """Dispose of the database pools."""
        self.dbs.dispose()


def service_password(data_dir: Path) -> str:
    """The password of the hub's own MQTT clients, generated once per data dir and kept 0600."""
    path = data_dir / "service.secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value



def image_store(settings: Settings) -> ImageStore:
    """Firmware images under the data dir, or in the S3-compatible bucket `ota.s3_bucket` names."""
    ota = settings.ota
    if not ota.s3_bucket:
        return DirStore(settings.data_dir / "firmware")
    return S3Store(bucket=ota.s3_bucket, scratch=settings.data_dir / "firmware-uploads",
                   endpoint_url=ota.s3_endpoint_url, region=ota.s3_region, access_key=ota.s3_access_key,
                   secret_key=ota.s3_secret_key, prefix=ota.s3_prefix)


def bootstrap(settings: Settings, *, migrate: bool = True) -> Services:
    """Build the services for `settings`; migrate every database to head unless told not to."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metadata_for("cell")  # every context's tables are registered before anything reads the data map
    dbs = Databases(settings.global_db_url(), {c: settings.cell_db_url(c) for c in settings.cells},
                    echo=settings.database.echo)
    if migrate:
        upgrade_all(dbs)
    bus = EventBus()

    def current_spec_hash(model: str) -> str | None:  # `products` is built next: it asks certification back
        try:
            return products.get(model).spec_hash
        except NotFound:
            return None

    def partner_of(model: str) -> str | None:  # raises NotFound for an unknown product
        return products.get(model).partner_id

    def current_spec_version(model: str) -> int | None:
        try:
            return products.get(model).spec_version
        except NotFound:
            return None

    certification = CertificationService(dbs, data_dir=settings.data_dir, market_profiles=MarketService(dbs).profiles,
                                         spec_hash_of=current_spec_hash, bus=bus, partner_of=partner_of,
                                         spec_version_of=current_spec_version)
    products = ProductService(dbs, bus, certification=certification.passing_markets, gate=certification.market_gate)
    devices = DeviceService(dbs, products, bus, secret_key=settings.secret_key.encode(),
                            default_cell=settings.default_cell)
    keys = SubjectKeys(dbs, CellKeys(settings.data_dir / "keys"))
    sealer = PayloadSealer(keys, owners_of=home_privacy.device_owners)
    twin = TwinService(dbs, sealer)
    link = CommandLink()
    home = HomeContext.build(dbs, bus, devices=devices, products=products, twin=twin, sealer=sealer,
                             secret_key=settings.secret_key.encode(), token_ttl_s=settings.api.token_ttl_s,
                             commands=link, mail=settings.mail, development=settings.environment == "development",
                             public_url=f"http://{settings.api.host}:{settings.api.port}")
    registry = DataRegistry()  # each context registers its own personal tables with privacy's data map
    home_privacy.register(registry, home.accounts, home.bindings)
    connect_privacy.register(registry)
    twin_privacy.register(registry)
    telemetry_privacy.register(registry)
    automate_privacy.register(registry)
    security_privacy.register(registry)
    ota_privacy.register(registry)
    apps_privacy.register(registry)
    notify_privacy.register(registry)
    url_policy = UrlPolicy(allow_private=settings.webhooks.allow_private,
                           require_https=settings.environment == "production")
    privacy = PrivacyContext.build(dbs, registry, keys=keys, sealer=sealer, data_dir=settings.data_dir,
                                   secret_key=settings.secret_key.encode())
    apps = AppsContext.build(dbs, bus, homes=home.homes, url_policy=url_policy,
                             storage_uri=settings.redis_url or "memory://", key_prefix=settings.redis_key_prefix)
    home.homes.app_audit = privacy.audit.append  # access through an app is audited like an operator's
    notifications = NotificationService(dbs, bus, home.homes, retention_days=settings.notify.retention_days,
                                        offline_debounce_s=settings.notify.offline_debounce_s)
    automations = AutomationService(dbs, bus, homes=home.homes, devices=devices, products=products,
                                    url_policy=url_policy, notifications=notifications)
    apps.grants.on_revoked.append(automations.disable_grant)  # an app's rules stop with its access
    security = SecurityContext.build(dbs, bus, settings.security, devices=devices, products=products, twin=twin,
                                     declarations=certification.declarations, audit_log=privacy.audit,
                                     default_cell=settings.default_cell, url_policy=url_policy)
    ecosystem = build_ecosystem(dbs, bus, products, devices.count_by_partner,
                                designs_dir=settings.data_dir / "designs", audit=brand_audit(privacy, settings))
    # what changes the gate's answer re-evaluates the product's listings (certify and ecosystem are siblings)
    bus.subscribe(ReportRecorded, ecosystem.listings.on_certification_changed)
    bus.subscribe(EvidenceChanged, ecosystem.listings.on_certification_changed)
    firmware = FirmwareService(dbs, bus, products, data_dir=settings.data_dir, store=image_store(settings))
    campaigns = CampaignService(dbs, bus, products=products, devices=devices, twin=twin, firmware=firmware,
                                token_key=hashlib.sha256(b"ota-download:" + settings.secret_key.encode()).digest(),
                                offer_retry_s=settings.ota.offer_retry_s,
                                default_max_in_flight=settings.ota.max_in_flight)
    security.service.updates = campaigns.last_updates  # "never updated" counts completed OTA updates (siblings)
    return Services(
        settings=settings,
        dbs=dbs,
        bus=bus,
        products=products,
        ecosystem=ecosystem,
        devices=devices,
        dead_letters=DeadLetterService(dbs),
        twin=twin,
        telemetry=TelemetryService(dbs, sealer, spec_of=products.compiled, retention=Retention(
            dbs, raw_days=settings.telemetry.retention_days, rollup_days=settings.telemetry.rollup_retention_days,
            batch=settings.telemetry.prune_batch,
            dids_of=lambda cell, model: [d.did for d in devices.list(cell=cell, model=model, limit=10**9)],
            partitions=Partitions(dbs, ahead=settings.telemetry.partitions_ahead))),
        tokens=TokenService(dbs, default_ttl_s=settings.api.service_token_ttl_s),
        home=home,
        certification=certification,
        firmware=firmware,
        campaigns=campaigns,
        command_link=link,
        service_password=service_password(settings.data_dir),
        automations=automations,
        privacy=privacy,
        security=security,
        apps=apps,
        notifications=notifications,
    )


def brand_audit(privacy: PrivacyContext, settings: Settings) -> Callable[..., object]:
    """The brand's own decisions (design approvals, pricing overrides) go to the default cell's audit chain: the
    global plane has no chain of its own, and these entries hold no personal data."""
    def audit(*, actor: str, action: str, subject: str | None = None, detail: dict[str, Any] | None = None) -> str:
        return privacy.audit.append(settings.default_cell, actor=actor, action=action, subject=subject, detail=detail)
    return audit
