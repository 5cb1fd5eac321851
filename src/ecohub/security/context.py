"""The security context wired once: the audit service, the connect recorder on the bus, the webhook notifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecohub.bus import EventBus
from ecohub.connect.events import DeviceConnectAttempted
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.netguard import UrlPolicy
from ecohub.privacy.audit import AuditLog
from ecohub.security.domain import Thresholds
from ecohub.security.notify import WebhookNotifier
from ecohub.security.recorder import ConnectRecorder
from ecohub.security.service import SecurityService
from ecohub.settings import SecuritySettings
from ecohub.store import Databases
from ecohub.twin.service import TwinService


@dataclass
class SecurityContext:
    """The audit and what feeds it."""

    service: SecurityService
    recorder: ConnectRecorder
    settings: SecuritySettings

    @classmethod
    def build(cls, dbs: Databases, bus: EventBus, settings: SecuritySettings, *, devices: DeviceService,
              products: ProductService, twin: TwinService, declarations: Callable[[], dict[str, dict[str, Any]]],
              audit_log: AuditLog, default_cell: str, url_policy: UrlPolicy) -> SecurityContext:
        """Wire the service; the recorder listens to the auth callout's decisions on the bus."""
        thresholds = Thresholds(auth_failures=settings.auth_failures, auth_window_s=settings.auth_window_s,
                                source_addresses=settings.source_addresses, source_window_s=settings.source_window_s,
                                rate_window_s=settings.rate_window_s, never_updated_days=settings.never_updated_days)
        service = SecurityService(dbs, devices=devices, products=products, twin=twin, declarations=declarations,
                                  audit_log=audit_log, bus=bus, thresholds=thresholds, default_cell=default_cell,
                                  notifier=WebhookNotifier(settings.webhook_url, url_policy))
        recorder = ConnectRecorder(service)
        bus.subscribe(DeviceConnectAttempted, recorder.on_attempt)
        return cls(service=service, recorder=recorder, settings=settings)
