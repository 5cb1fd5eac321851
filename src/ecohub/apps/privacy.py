"""Apps' part of the data map: the grants a user gave, their devices, codes, tokens, push queues and outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, select

from ecohub.apps.models import (
    AppGrant,
    AppGrantDevice,
    AppToken,
    AuthCode,
    PushOutbox,
    WebhookDelivery,
    WebhookSubscription,
)
from ecohub.privacy.registry import DataRegistry, Scope, StoreHandler


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _of_grants(column: Any) -> Any:
    def where(sc: Scope) -> ColumnElement[bool]:
        return column.in_(select(AppGrant.id).where(AppGrant.user_id == sc.user_id))  # type: ignore[no-any-return]
    return where


def _secret_hidden(row: dict[str, Any], _ctx: Any) -> dict[str, Any]:
    for key in ("access_hash", "refresh_hash", "secret"):
        if key in row:
            row[key] = "(credential: not exported)"
    return row


def register(registry: DataRegistry) -> None:
    """Register the apps context's personal stores (each cell's grants and what hangs off them)."""
    registry.add(  # children first (erasure runs in this order)
        StoreHandler(_t(AppGrantDevice), "apps", _of_grants(AppGrantDevice.grant_id)),
        StoreHandler(_t(AuthCode), "apps", _of_grants(AuthCode.grant_id)),
        StoreHandler(_t(AppToken), "apps", _of_grants(AppToken.grant_id), transform=_secret_hidden),
        StoreHandler(_t(WebhookSubscription), "apps", _of_grants(WebhookSubscription.grant_id),
                     transform=_secret_hidden),
        StoreHandler(_t(WebhookDelivery), "apps", lambda sc: WebhookDelivery.webhook_id.in_(
            select(WebhookSubscription.id).where(WebhookSubscription.grant_id.in_(
                select(AppGrant.id).where(AppGrant.user_id == sc.user_id))))),
        StoreHandler(_t(PushOutbox), "apps", lambda sc: sc.of_devices(PushOutbox.did)),  # seconds-old changes
        StoreHandler(_t(AppGrant), "apps", lambda sc: AppGrant.user_id == sc.user_id),  # last: the others hang off it
    )
