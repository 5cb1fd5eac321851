"""Automations and privacy pages: they call the automations and privacy services, like the REST routes do."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ecohub.api.console.common import ConsoleRoute, render, user_only
from ecohub.api.deps import ServicesDep
from ecohub.api.routes.privacy import stream_file
from ecohub.auth import Principal
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError
from ecohub.privacy.domain import DsrKind

router = APIRouter(route_class=ConsoleRoute)


def _literal(text: str) -> Any:
    """A typed value from a form field: JSON when it parses (true, 21.5, "x"), the text otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@router.get("/automations", response_class=HTMLResponse)
def automations(request: Request, services: ServicesDep, home: str | None = None,
                principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The automations of one home and a simple editor (when) → (then)."""
    return _automations_page(request, principal, services, home)


def _automations_page(request: Request, principal: Principal, services: Services, home_id: str | None, *,
                      error: str | None = None, saved: str | None = None) -> HTMLResponse:
    homes = services.home.homes.of_user(principal)
    home_id = home_id or (homes[0]["home_id"] if homes else None)
    rules: list[Any] = []
    devices: list[dict[str, Any]] = []
    if home_id:
        rules = services.automations.of_home(principal, home_id)
        devices = [{"did": d["did"], "name": d["name"]} for d in services.home.devices.of_user(principal, home_id)]
    return render(request, "user/automations.html", principal, rules=rules, devices=devices, homes=homes,
                  home_id=home_id, error=error, saved=saved)


@router.post("/automations", response_class=HTMLResponse)
def create_automation(request: Request, services: ServicesDep, home_id: str = Form(...), name: str = Form(...),
                      when_did: str = Form(...), when_prop: str = Form(...), when_op: str = Form(""),
                      when_value: str = Form(""), then_did: str = Form(...), then_prop: str = Form(...),
                      then_value: str = Form(...), principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Save a rule "when a property changes (or crosses op value), set a property" with the automations service."""
    trigger: dict[str, Any] = {"type": "property", "did": when_did, "prop": when_prop}
    if when_op:
        trigger.update(op=when_op, value=_literal(when_value))
    doc = {"name": name, "triggers": [trigger],
           "actions": [{"type": "set", "did": then_did, "values": {then_prop: _literal(then_value)}}]}
    try:
        services.automations.create(principal, home_id, doc)
    except EcohubError as err:
        return _automations_page(request, principal, services, home_id, error=err.message)
    return _automations_page(request, principal, services, home_id, saved=name)


@router.get("/automations/{rule_id}/runs", response_class=HTMLResponse)
def automation_runs(rule_id: str, request: Request, services: ServicesDep,
                    principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The latest runs of one rule (a fragment)."""
    runs = services.automations.runs(principal, rule_id, limit=10)
    return render(request, "user/_runs.html", principal, runs=runs, error=None)


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request, services: ServicesDep, principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The account's facts, its current consents, export and erasure."""
    assert principal.cell is not None
    consents = services.privacy.consents.ledger(principal.cell, principal.subject)["current"]
    return render(request, "user/privacy.html", principal, profile=services.home.accounts.profile(principal),
                  consents=consents)


def _notice(message: str) -> HTMLResponse:
    return HTMLResponse(f'<p class="notice" role="status">{escape(message, quote=False)}</p>')


@router.post("/privacy/export")
def export(services: ServicesDep, password: str = Form(""), principal: Principal = Depends(user_only)) -> Response:
    """The caller's data export, streamed (the password proves identity again), or the reason it was refused."""
    assert principal.cell is not None
    dsr = services.privacy.dsr
    try:
        dsr.verify_identity(principal.cell, principal.subject, password, actor=principal.actor, kind=DsrKind.EXPORT)
        request, f = dsr.export(principal.cell, principal.subject, actor=principal.actor)
    except EcohubError as err:
        return _notice(f"Export refused: {err.message}")
    return StreamingResponse(stream_file(f), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="ecohub-export-{request["request_id"]}.zip"'})


@router.post("/privacy/erase")
def erase(services: ServicesDep, confirm: str = Form(""), password: str = Form(""),
          principal: Principal = Depends(user_only)) -> Response:
    """Erase the account (needs the word ERASE typed in and the password)."""
    if confirm.strip() != "ERASE":
        return HTMLResponse('<p class="error" role="alert">Type ERASE to confirm.</p>')
    assert principal.cell is not None
    dsr = services.privacy.dsr
    try:
        dsr.verify_identity(principal.cell, principal.subject, password, actor=principal.actor, kind=DsrKind.ERASURE)
        receipt = dsr.erase(principal.cell, principal.subject, actor=principal.actor)
    except EcohubError as err:
        return _notice(f"Erasure refused: {err.message}")
    return _notice(f"Erasure request {receipt['request_id']} is {receipt['status']} (due {receipt['due'][:10]}).")
