"""The console's words for identifiers (stages, series, availability, purposes) and its Jinja formatting filters."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from ecohub.api import i18n
from ecohub.api.i18n import N_
from ecohub.bootstrap import Services
from ecohub.spec.labels import spec_labels, type_label
from ecohub.spec.labels import words as spec_words

# identifiers the console shows → English message ids (translated where shown)
WORDS: dict[str, str] = {
    # product lifecycle
    "concept": N_("Concept"), "defined": N_("Defined"), "in_development": N_("In development"),
    "certification": N_("Certification"), "approved": N_("Approved"), "launched": N_("Launched"),
    "discontinued": N_("Discontinued"), "rejected": N_("Rejected"),
    # funding rounds and partner stages
    "angel": N_("Angel"), "seed": N_("Seed"), "pre_a": N_("Pre-A"), "series_a": N_("Series A"),
    "series_b": N_("Series B"), "series_c": N_("Series C"), "series_d": N_("Series D"), "pre_ipo": N_("Pre-IPO"),
    "strategic": N_("Strategic"), "ipo": N_("IPO"), "acquisition": N_("Acquisition"), "acquired": N_("Acquired"),
    "listed": N_("Listed"), "none": N_("No round yet"), "exited": N_("Exited"),
    # partner kinds
    "ecosystem": N_("Ecosystem company"), "developer": N_("Third-party developer"),
    # listings
    "in_stock": N_("In stock"), "preorder": N_("Pre-order"), "out_of_stock": N_("Out of stock"),
    "suspended": N_("Suspended"),
    # home roles
    "owner": N_("Owner"), "member": N_("Member"), "guest": N_("Guest"),
    # roles of console sessions
    "operator": N_("Operator"), "partner": N_("Partner"), "user": N_("User"), "prospect": N_("Prospect"),
    # automation runs
    "fired": N_("Ran"), "conditions_false": N_("Conditions not met"), "failed": N_("Failed"),
    "disabled by a user": N_("disabled by a user"),
    # firmware campaigns and each device's update
    "running": N_("Running"), "paused": N_("Paused"), "halted": N_("Halted"), "cancelled": N_("Cancelled"),
    "completed": N_("Completed"), "pending": N_("Pending"), "offered": N_("Offered"),
    "downloading": N_("Downloading"), "verifying": N_("Verifying"), "installing": N_("Installing"),
    "done": N_("Done"), "skipped": N_("Skipped"), "waiting": N_("Waiting"), "current": N_("Current"),
    "active": N_("Active"),
    "pause": N_("Pause"), "resume": N_("Resume"), "cancel": N_("Cancel"), "uploaded": N_("Uploaded"),
    "signed": N_("Signed"), "revoked": N_("Revoked"),
    # security findings
    "critical": N_("Critical"), "high": N_("High"), "medium": N_("Medium"), "low": N_("Low"), "open": N_("Open"),
    "acknowledged": N_("Acknowledged"), "suppressed": N_("Suppressed"), "resolved": N_("Resolved"),
    # stored notes ecohub writes itself (shown with the `t` filter)
    "created by spec import": N_("created by spec import"),
    # regions of markets
    "Africa": N_("Africa"), "Central Asia": N_("Central Asia"), "EEA": N_("EEA"), "East Asia": N_("East Asia"),
    "Europe": N_("Europe"), "European Union": N_("European Union"), "Latin America": N_("Latin America"),
    "Middle East": N_("Middle East"), "North America": N_("North America"), "Oceania": N_("Oceania"),
    "South Asia": N_("South Asia"), "Southeast Asia": N_("Southeast Asia"),
    # consent purposes
    "device_diagnostics_to_maker": N_("Send device diagnostics to the maker"),
    "product_improvement_analytics": N_("Product improvement analytics"),
}


def word(identifier: Any) -> str:
    """An identifier in words, in the current language (series_a → Series A; unknown ones spelled out)."""
    if identifier is None or identifier == "":
        return "—"
    text = str(identifier)
    return i18n.gettext(WORDS[text]) if text in WORDS else spec_words(text)


def on_off(value: Any, *, writable: bool = True) -> str:
    """A boolean in words: On/Off for something one switches, Yes/No for a fact."""
    if value is None:
        return "—"
    if writable:
        return i18n.gettext("On") if value else i18n.gettext("Off")
    return i18n.gettext("Yes") if value else i18n.gettext("No")


def value_text(prop: dict[str, Any], value: Any) -> str:
    """A property value as a person reads it: value-list words, On/Off, a number in the locale's way."""
    if value is None:
        return "—"
    words = prop.get("value_words") or {}
    if value in words:
        return str(words[value])
    if isinstance(value, bool) or prop.get("format") == "bool":
        return on_off(bool(value), writable="write" in prop.get("access", ()))
    if isinstance(value, int | float):
        return i18n.number(value)
    return str(value)


def labels_of(services: Services, model: str) -> dict[str, dict[str, Any]]:
    """Human labels of a model's properties (from its spec), translated into the request's language."""
    out = {}
    for key, info in spec_labels(services.products.compiled(model).spec).items():
        out[key] = {**info, "label": i18n.gettext(info["label"]), "service": i18n.gettext(info["service"]),
                    "thing": i18n.gettext(info["thing"])}
    return out


def action_labels(services: Services, model: str) -> dict[str, str]:
    """Human labels of a model's actions."""
    spec = services.products.compiled(model).spec
    return {f"{a.siid}.{a.iid}": i18n.gettext(type_label(a.type, a.description)) for s in spec.services
            for a in s.actions}


def install_filters(env: Environment) -> None:
    """The console's formatting filters, all in the current request's language."""
    env.filters["ms_time"] = i18n.ms_time
    env.filters["money"] = i18n.compact
    env.filters["price"] = i18n.price
    env.filters["number"] = i18n.number
    env.filters["iso_time"] = i18n.iso_time
    env.filters["iso_date"] = i18n.iso_date
    env.filters["words"] = word
    env.filters["country"] = i18n.country
    env.filters["on_off"] = on_off
    env.filters["t"] = lambda text: i18n.translate_known(str(text), i18n.current())
    env.globals["value_text"] = value_text
