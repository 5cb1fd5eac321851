"""HTTP routes of automations (what a phone app calls): CRUD per home, enable/disable, run now, run history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import ServicesDep, require
from ecohub.api.paging import CursorParam
from ecohub.api.routes.homes import home_role
from ecohub.auth import Principal, Role, Scope
from ecohub.home.domain import HomeRole

router = APIRouter(tags=["automations"])
user = require(Role.USER)
user_or_app = require(Role.USER, Role.APP)  # app tokens: automations:write, own rules, granted devices

EXAMPLE: dict[str, Any] = {
    "name": "Too warm: plug on",
    "triggers": [{"type": "property", "did": "SENSOR-DID", "prop": "temperature", "op": ">", "value": 26}],
    "conditions": {"all": [{"time": {"after": "08:00", "before": "22:00"}}]},
    "actions": [{"type": "set", "did": "PLUG-DID", "values": {"switch.on": True}},
                {"type": "webhook", "url": "https://example.org/hook"}],
}


def rule_role(least: HomeRole) -> Callable[..., Principal]:
    """Admit users with at least `least` in the home of the path's rule; others learn nothing of it (404)."""

    def check(rule_id: str, services: ServicesDep, principal: Principal = Depends(user_or_app)) -> Principal:
        services.automations.require_rule(principal, rule_id, least)
        return principal

    check.__name__ = f"automation_rule_{least.label}"
    return check


class RuleIn(BaseModel):
    """A rule: any trigger fires it, then the conditions must hold, then the actions run in order.

    Triggers: property (changed, or crossing `op value`), event, online, schedule (cron), time (`at` HH:MM).
    Conditions: {all|any: [...]}, {not: ...}, {did, prop, op, value}, {time: {after, before, weekdays}}.
    Actions: set {did, values}, action {did, action, in}, run_rule {rule_id}, webhook {url, body}.
    Properties, events and actions are named as in the spec (`switch.on`, `temperature`) or by `siid.piid`.
    """

    name: str = Field(min_length=1, max_length=100)
    triggers: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    conditions: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    tz: str = Field(default="UTC", examples=["Europe/Rome"])
    max_runs_per_minute: int = Field(default=10, ge=1, le=600)
    enabled: bool = True

    model_config = {"json_schema_extra": {"examples": [EXAMPLE]}}

    def doc(self) -> dict[str, Any]:
        """The rule document the service checks."""
        return self.model_dump(exclude={"enabled"})


class RunIn(BaseModel):
    """Run a rule now; conditions are checked unless skipped."""

    skip_conditions: bool = False


@router.get("/homes/{home_id}/automations")
def list_rules(home_id: str, services: ServicesDep,
               principal: Principal = Depends(home_role(HomeRole.GUEST, Scope.AUTOMATIONS_WRITE))) -> list[Any]:
    """The home's automations (anyone in the home)."""
    return services.automations.of_home(principal, home_id)


@router.post("/homes/{home_id}/automations", status_code=201)
def create_rule(home_id: str, body: RuleIn, services: ServicesDep,
                principal: Principal = Depends(home_role(HomeRole.MEMBER, Scope.AUTOMATIONS_WRITE))) -> dict[str, Any]:
    """Create an automation (owner or member); refused with a reason when invalid or when it would loop."""
    return services.automations.create(principal, home_id, body.doc(), enabled=body.enabled)


@router.get("/automations/{rule_id}")
def get_rule(rule_id: str, services: ServicesDep,
             principal: Principal = Depends(rule_role(HomeRole.GUEST))) -> dict[str, Any]:
    """One automation (anyone in its home)."""
    return services.automations.get(principal, rule_id)


@router.put("/automations/{rule_id}")
def replace_rule(rule_id: str, body: RuleIn, services: ServicesDep,
                 principal: Principal = Depends(rule_role(HomeRole.MEMBER))) -> dict[str, Any]:
    """Replace an automation's definition (owner or member); checked as on creation."""
    return services.automations.update(principal, rule_id, body.doc())


@router.delete("/automations/{rule_id}", status_code=204)
def delete_rule(rule_id: str, services: ServicesDep,
                principal: Principal = Depends(rule_role(HomeRole.MEMBER))) -> None:
    """Delete an automation and its history (owner or member)."""
    services.automations.delete(principal, rule_id)


@router.post("/automations/{rule_id}/enable")
def enable_rule(rule_id: str, services: ServicesDep,
                principal: Principal = Depends(rule_role(HomeRole.MEMBER))) -> dict[str, Any]:
    """Enable an automation (checked again: its devices still bound, no loop)."""
    return services.automations.set_enabled(principal, rule_id, True)


@router.post("/automations/{rule_id}/disable")
def disable_rule(rule_id: str, services: ServicesDep,
                 principal: Principal = Depends(rule_role(HomeRole.MEMBER))) -> dict[str, Any]:
    """Disable an automation."""
    return services.automations.set_enabled(principal, rule_id, False)


@router.post("/automations/{rule_id}/run")
async def run_rule(rule_id: str, services: ServicesDep, body: RunIn | None = None,
                   principal: Principal = Depends(rule_role(HomeRole.MEMBER))) -> dict[str, Any]:
    """Run an automation now (owner or member); → the run record: conditions and each action's result."""
    return await services.automations.run_now(principal, rule_id,
                                              skip_conditions=bool(body and body.skip_conditions))


@router.get("/automations/{rule_id}/runs", responses={200: {"headers": paging.LINK_HEADER}})
def rule_runs(request: Request, response: Response, rule_id: str, services: ServicesDep,
              limit: int = Query(default=50, ge=1, le=200), cursor: CursorParam = None,
              principal: Principal = Depends(rule_role(HomeRole.GUEST))) -> list[Any]:
    """The automation's run history, newest first: why it fired or not, and what each action did; a `Link` header
    names the next page."""
    before = None if cursor is None else paging.field(paging.decode(cursor), "i", int)
    rows = services.automations.runs(principal, rule_id, limit=limit + 1, before=before)
    return paging.page(request, response, rows, limit=limit, position_of=lambda last: {"i": last["run_id"]})
