"""Use cases of the developer platform, wired once: app registry, grants and the OAuth server, quotas, push."""

from __future__ import annotations

from dataclasses import dataclass

from ecohub.apps.grants import GrantService
from ecohub.apps.oauth import OAuthServer
from ecohub.apps.push import PushService
from ecohub.apps.quota import Quotas
from ecohub.apps.registry import AppRegistry
from ecohub.bus import EventBus
from ecohub.home.homes import HomeService
from ecohub.netguard import UrlPolicy
from ecohub.store import Databases


@dataclass
class AppsContext:
    """The apps context's services."""

    registry: AppRegistry
    grants: GrantService
    oauth: OAuthServer
    quotas: Quotas
    push: PushService

    @classmethod
    def build(cls, dbs: Databases, bus: EventBus, *, homes: HomeService, url_policy: UrlPolicy,
              storage_uri: str = "memory://", key_prefix: str = "ecohub") -> AppsContext:
        """Wire the apps context."""
        registry = AppRegistry(dbs, url_policy=url_policy)
        grants = GrantService(dbs, registry, homes)
        quotas = Quotas(registry, storage_uri=storage_uri, key_prefix=key_prefix)
        return cls(registry=registry, grants=grants, oauth=OAuthServer(registry, grants), quotas=quotas,
                   push=PushService(dbs, bus, grants, quotas, url_policy=url_policy))
