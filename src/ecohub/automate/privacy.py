"""Automate's part of the data map: the rules of the user's homes and the runs of those rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, false, select

from ecohub.automate.models import AutomationRule, AutomationRun, Scene
from ecohub.privacy.registry import DataRegistry, Scope, StoreHandler


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _runs(sc: Scope) -> ColumnElement[bool]:
    if not sc.homes:
        return false()
    return AutomationRun.rule_id.in_(select(AutomationRule.id).where(AutomationRule.home_id.in_(list(sc.homes))))


def register(registry: DataRegistry) -> None:
    """Register automate's stores."""
    registry.add(
        StoreHandler(_t(AutomationRule), "automate", lambda sc: sc.of_homes(AutomationRule.home_id)),
        StoreHandler(_t(AutomationRun), "automate", _runs),
        StoreHandler(_t(Scene), "automate", lambda sc: sc.of_homes(Scene.home_id)),
    )
