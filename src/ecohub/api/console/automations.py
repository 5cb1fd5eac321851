"""Automations in the console: each rule as a sentence naming its devices, an editor with pickers drawn from each
device's spec, enable/disable/delete/run now (the automations service's own use cases, as the REST routes call)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from ecohub.api import i18n
from ecohub.api.console.common import ConsoleRoute, render, user_only
from ecohub.api.console.words import labels_of, on_off, value_text, word
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError
from ecohub.spec.labels import type_label

router = APIRouter(route_class=ConsoleRoute)
OPS = ("==", "!=", ">", ">=", "<", "<=")
OP_WORDS = {"==": i18n.N_("is"), "!=": i18n.N_("is not"), ">": i18n.N_("is above"), ">=": i18n.N_("is at least"),
            "<": i18n.N_("is below"), "<=": i18n.N_("is at most")}


def literal(text: str) -> Any:
    """A typed value from a form field: JSON when it parses (true, 21.5, "x"), the text otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def model_catalogue(services: Services, device: dict[str, Any]) -> dict[str, Any]:
    """One model's properties (labels, access, range, value words, unit), events and actions, for the pickers."""
    labels = labels_of(services, device["model"])
    spec = services.products.compiled(device["model"]).spec
    props = []
    for p in device["properties"]:
        info = labels.get(p["key"], {})
        entry = {"key": p["key"], "label": info.get("label") or p["name"], "service": info.get("service", ""),
                 "thing": info.get("thing") or info.get("label") or p["name"], "facts": info.get("facts", False),
                 "format": p["format"], "access": p["access"], "unit": info.get("unit", ""),
                 "range": p.get("range"), "values": [{"value": v["value"], "text": v["description"]}
                                                     for v in p.get("values") or []]}
        if p["format"] == "bool":
            entry["values"] = [{"value": True, "text": on_off(True, writable="write" in p["access"])},
                               {"value": False, "text": on_off(False, writable="write" in p["access"])}]
        props.append(entry)
    props.sort(key=lambda e: e["facts"])  # the maker's facts (model, serial) last in the pickers
    return {"props": props,
            "events": {f"{e.siid}.{e.iid}": i18n.gettext(type_label(e.type, e.description))
                       for s in spec.services for e in s.events},
            "actions": {f"{a.siid}.{a.iid}": i18n.gettext(type_label(a.type, a.description))
                        for s in spec.services for a in s.actions}}


def catalogue(services: Services, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """The home's devices (name and model) and, once per model, what the pickers offer."""
    models: dict[str, dict[str, Any]] = {}
    for d in devices:
        if d["model"] not in models:
            models[d["model"]] = model_catalogue(services, d)
    return {"devices": {d["did"]: {"name": d["name"] or d["product"], "model": d["model"]} for d in devices},
            "models": models}


def device_entries(cat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per device: its name with its model's properties, events and actions."""
    return {did: {**d, **cat["models"][d["model"]]} for did, d in cat["devices"].items()}


class Sentences:
    """Rules as sentences: "When Kitchen plug · On is On, set Hall lamp · Brightness to 40 %"."""

    def __init__(self, devices: dict[str, dict[str, Any]], rules: list[dict[str, Any]]) -> None:
        self.devices = devices
        self.rule_names = {r["rule_id"]: r["name"] for r in rules}

    def _device(self, did: str) -> str:
        d = self.devices.get(did)
        return d["name"] if d else i18n.gettext("a device no longer in this home")

    def _prop(self, did: str, key: str) -> dict[str, Any]:
        d = self.devices.get(did) or {"props": []}
        return next((p for p in d["props"] if p["key"] == key), {"key": key, "label": key, "format": "", "unit": ""})

    def _thing(self, did: str, key: str) -> str:
        p = self._prop(did, key)
        return f"{self._device(did)} · {p.get('thing') or p['label']}"

    def _value(self, did: str, key: str, value: Any) -> str:
        p = self._prop(did, key)
        words = {v["value"]: v["text"] for v in p.get("values") or [] if not isinstance(v["value"], bool)}
        text = value_text({**p, "value_words": words}, value)
        return f"{text} {p['unit']}" if p.get("unit") and isinstance(value, int | float) else text

    def trigger(self, t: dict[str, Any]) -> str:
        kind = t.get("type")
        if kind == "property":
            if t.get("op"):
                return i18n.gettext("%(thing)s %(op)s %(value)s", thing=self._thing(t["did"], t["prop"]),
                                    op=i18n.gettext(OP_WORDS.get(t["op"], t["op"])),
                                    value=self._value(t["did"], t["prop"], t.get("value")))
            return i18n.gettext("%(thing)s changes", thing=self._thing(t["did"], t["prop"]))
        if kind == "event":
            events = (self.devices.get(t["did"]) or {}).get("events", {})
            return i18n.gettext("%(device)s reports %(event)s", device=self._device(t["did"]),
                                event=events.get(t["event"], t["event"]))
        if kind == "online":
            return (i18n.gettext("%(device)s comes online", device=self._device(t["did"])) if t.get("online")
                    else i18n.gettext("%(device)s goes offline", device=self._device(t["did"])))
        return i18n.gettext("the schedule %(cron)s is due", cron=t.get("cron", ""))

    def action(self, a: dict[str, Any]) -> str:
        kind = a.get("type")
        if kind == "set":
            parts = [i18n.gettext("set %(thing)s to %(value)s", thing=self._thing(a["did"], k),
                                  value=self._value(a["did"], k, v)) for k, v in a.get("values", {}).items()]
            return i18n.gettext(", ").join(parts)
        if kind == "action":
            actions = (self.devices.get(a["did"]) or {}).get("actions", {})
            return i18n.gettext("run %(action)s on %(device)s", action=actions.get(a["action"], a["action"]),
                                device=self._device(a["did"]))
        if kind == "run_rule":
            return i18n.gettext("run the rule “%(name)s”", name=self.rule_names.get(a["rule_id"], a["rule_id"]))
        if kind == "notify":
            return i18n.gettext("notify the home's people: “%(text)s”", text=a.get("message", ""))
        return i18n.gettext("call %(url)s", url=a.get("url", ""))

    def __call__(self, rule: dict[str, Any]) -> str:
        when = i18n.gettext(" or ").join(self.trigger(t) for t in rule.get("triggers", []))
        then = i18n.gettext(" and ").join(self.action(a) for a in rule.get("actions", []))
        if rule.get("conditions"):
            return i18n.gettext("When %(when)s, if its conditions hold, %(then)s", when=when, then=then)
        return i18n.gettext("When %(when)s, %(then)s", when=when, then=then)


def editable(rule: dict[str, Any]) -> dict[str, Any] | None:
    """The form fields of a rule the simple editor can show (one property trigger, one set of one value)."""
    triggers, actions = rule.get("triggers") or [], rule.get("actions") or []
    if len(triggers) != 1 or len(actions) != 1 or rule.get("conditions"):
        return None
    t, a = triggers[0], actions[0]
    if t.get("type") != "property" or a.get("type") != "set" or len(a.get("values") or {}) != 1:
        return None
    (key, value), = a["values"].items()
    return {"rule_id": rule["rule_id"], "name": rule["name"], "when_did": t["did"], "when_prop": t["prop"],
            "when_op": t.get("op") or "", "when_value": json.dumps(t["value"]) if "value" in t else "",
            "then_did": a["did"], "then_prop": key, "then_value": json.dumps(value)}


def page(request: Request, principal: Principal, services: Services, home_id: str | None, *,
         error: str | None = None, saved: str | None = None, notice: str | None = None, edit: str | None = None,
         draft: dict[str, Any] | None = None) -> HTMLResponse:
    """The automations page of one home: the rules as sentences and the editor."""
    homes = services.home.homes.of_user(principal)
    home_id = home_id or (homes[0]["home_id"] if homes else None)
    rules: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    if home_id:
        rules = services.automations.of_home(principal, home_id)
        devices = services.home.devices.of_user(principal, home_id)
    cat = catalogue(services, devices)
    sentence = Sentences(device_entries(cat), rules)
    views = [{**r, "sentence": sentence(r), "editable": editable(r) is not None} for r in rules]
    form = draft
    if form is None and edit:
        form = next((editable(r) for r in rules if r["rule_id"] == edit), None)
    return render(request, "user/automations.html", principal, rules=views, devices=devices, homes=homes,
                  home_id=home_id, error=error, saved=saved, notice=notice, catalog=cat, form=form or {}, ops=OPS,
                  op_words={op: i18n.gettext(w) for op, w in OP_WORDS.items()})


@router.get("/automations", response_class=HTMLResponse)
def automations(request: Request, services: ServicesDep, home: str | None = None, edit: str | None = None,
                principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The automations of one home, and the editor (empty, or filled with the rule named by `edit`)."""
    return page(request, principal, services, home, edit=edit)


@router.post("/automations", response_class=HTMLResponse)
def save_automation(request: Request, services: ServicesDep, home_id: str = Form(...), name: str = Form(...),
                    when_did: str = Form(...), when_prop: str = Form(...), when_op: str = Form(""),
                    when_value: str = Form(""), then_did: str = Form(...), then_prop: str = Form(...),
                    then_value: str = Form(...), rule_id: str = Form(""),
                    principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Save a rule "when a property changes (or compares to a value), set a property": a new one, or `rule_id`."""
    trigger: dict[str, Any] = {"type": "property", "did": when_did, "prop": when_prop}
    if when_op:
        trigger.update(op=when_op, value=literal(when_value))
    doc = {"name": name, "triggers": [trigger],
           "actions": [{"type": "set", "did": then_did, "values": {then_prop: literal(then_value)}}]}
    draft = {"rule_id": rule_id, "name": name, "when_did": when_did, "when_prop": when_prop, "when_op": when_op,
             "when_value": when_value, "then_did": then_did, "then_prop": then_prop, "then_value": then_value}
    try:
        if rule_id:
            current = services.automations.get(principal, rule_id)
            services.automations.update(principal, rule_id, {**doc, "tz": current.get("tz") or "UTC",
                                                             "max_runs_per_minute": current.get(
                                                                 "max_runs_per_minute", 10)})
        else:
            services.automations.create(principal, home_id, doc)
    except EcohubError as err:
        return page(request, principal, services, home_id, error=i18n.translate_known(err.message, i18n.current()),
                    draft=draft)
    return page(request, principal, services, home_id, saved=name)


@router.post("/automations/{rule_id}/{change}", response_class=HTMLResponse)
async def change_automation(rule_id: str, change: str, request: Request, services: ServicesDep,
                            principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Enable, disable, delete or run a rule now; the page again with what happened."""
    rule = services.automations.get(principal, rule_id)
    home_id, name = rule["home_id"], rule["name"]
    try:
        if change == "enable":
            services.automations.set_enabled(principal, rule_id, True)
            done = i18n.gettext("“%(name)s” is enabled.", name=name)
        elif change == "disable":
            services.automations.set_enabled(principal, rule_id, False)
            done = i18n.gettext("“%(name)s” is disabled: it will not run until you enable it.", name=name)
        elif change == "delete":
            services.automations.delete(principal, rule_id)
            done = i18n.gettext("“%(name)s” is deleted.", name=name)
        elif change == "run":
            run = await services.automations.run_now(principal, rule_id, skip_conditions=True)
            done = i18n.gettext("“%(name)s” ran: %(outcome)s.", name=name, outcome=word(run.get("outcome", "")))
        else:
            return page(request, principal, services, home_id, error=i18n.gettext("Unknown change."))
    except EcohubError as err:
        return page(request, principal, services, home_id, error=i18n.translate_known(err.message, i18n.current()))
    return page(request, principal, services, home_id, notice=done)


@router.get("/automations/{rule_id}/runs", response_class=HTMLResponse)
def automation_runs(rule_id: str, request: Request, services: ServicesDep,
                    principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The latest runs of one rule (a fragment)."""
    runs = services.automations.runs(principal, rule_id, limit=10)
    return render(request, "user/_runs.html", principal, runs=runs, error=None)
