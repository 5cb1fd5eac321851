"""Human labels for a spec: MIoT type names in words, units as symbols, values in words (English message ids).

The edges translate these English labels with their gettext catalogue; `N_` only marks them for extraction."""

from __future__ import annotations

import re
from typing import Any

from ecohub.spec.domain import Property, Service, Spec, urn_name


def N_(message: str) -> str:  # gettext's "mark only" convention
    """Mark a label for the message catalogue (translated where it is shown)."""
    return message


# MIoT type names (the 4th part of the URN) that read well as labels; for others the maker's description is used
TYPE_NAMES: dict[str, str] = {
    # properties
    "on": N_("On"), "mode": N_("Mode"), "brightness": N_("Brightness"), "temperature": N_("Temperature"),
    "relative-humidity": N_("Humidity"), "battery-level": N_("Battery level"), "power": N_("Power"),
    "electric-power": N_("Power draw"), "power-consumption": N_("Energy used"), "color-temperature":
    N_("Colour temperature"), "color": N_("Colour"), "fault": N_("Fault"), "status": N_("Status"),
    "target-temperature": N_("Target temperature"), "physical-controls-locked": N_("Child lock"),
    "co2-density": N_("CO₂"), "pm2.5-density": N_("PM2.5"), "filter-life-level": N_("Filter life"),
    "filter-used-time": N_("Filter used"), "filter-left-time": N_("Filter left"), "alarm": N_("Alarm"),
    "fan-level": N_("Fan speed"), "speed-level": N_("Speed"), "countdown-time": N_("Countdown"),
    "delay-time": N_("Delay"), "manufacturer": N_("Manufacturer"), "model": N_("Model"),
    "serial-number": N_("Serial number"), "firmware-revision": N_("Firmware"), "favorite-level": N_("Favourite level"),
    "temperature-display-unit": N_("Temperature unit"), "default-power-on-state": N_("State after power loss"),
    "electric-current": N_("Current"), "voltage": N_("Voltage"), "illumination": N_("Illuminance"),
    "motion-state": N_("Motion"), "contact-state": N_("Contact"), "submersion-state": N_("Leak"),
    "charging-state": N_("Charging"), "air-quality": N_("Air quality"), "toggle": N_("Toggle"),
    # services
    "switch": N_("Switch"), "light": N_("Light"), "indicator-light": N_("Indicator light"), "battery": N_("Battery"),
    "environment": N_("Environment"), "temperature-humidity-sensor": N_("Temperature and humidity"),
    "air-purifier": N_("Air purifier"), "filter": N_("Filter"), "screen": N_("Screen"),
    "device-information": N_("Device information"), "delay": N_("Timer"), "aqi": N_("Air quality"),
    "device-display-unit": N_("Display unit"), "fan": N_("Fan"), "heater": N_("Heater"), "outlet": N_("Outlet"),
}

# spec units → symbols (MIoT unit names)
UNITS: dict[str, str] = {
    "percentage": "%", "celsius": "°C", "fahrenheit": "°F", "kelvin": "K", "watt": "W", "kWh": "kWh",
    "kwh": "kWh", "ppm": "ppm", "μg/m3": "µg/m³", "mg/m3": "mg/m³", "lux": "lx", "seconds": "s",
    "minutes": "min", "hours": "h", "days": "d", "volt": "V", "ampere": "A", "mA": "mA", "pascal": "Pa",
    "kpa": "kPa", "arcdegrees": "°", "metre": "m", "meter": "m", "rgb": "", "none": "",
}

IDENTIFIER = re.compile(r"^[a-z0-9]+([_.-][a-z0-9]+)*$")
ACRONYMS = {"pm2.5": "PM2.5", "co2": "CO₂", "aqi": "AQI", "rpm": "rpm", "led": "LED", "tvoc": "TVOC", "id": "ID"}


def words(identifier: str) -> str:
    """`target-temperature` or `series_a` → `Target temperature` / `Series a` (the generic fallback)."""
    parts = [ACRONYMS.get(p, p) for p in identifier.replace("_", "-").split("-") if p]
    if not parts:
        return identifier
    first = parts[0]
    return " ".join([first[:1].upper() + first[1:], *parts[1:]])


def unit_symbol(unit: str | None) -> str:
    """A spec unit as its symbol (percentage → %, celsius → °C); unknown units unchanged, none → ''."""
    if not unit:
        return ""
    return UNITS.get(unit, UNITS.get(unit.lower(), unit))


def maker_words(description: str) -> str:
    """A maker's description as a label: identifiers some specs use as descriptions (`start-time`) spelled out."""
    text = description.strip()
    return words(text) if IDENTIFIER.match(text) else text


def type_label(urn: str, description: str = "") -> str:
    """A label for a service, property, action or event: the known MIoT name, else the maker's words."""
    name = urn_name(urn)
    if name in TYPE_NAMES:
        return TYPE_NAMES[name]
    return maker_words(description) or words(name)


def property_labels(service: Service) -> dict[str, str]:
    """Labels of a service's properties, made distinct within it (a repeated label gets the description added)."""
    labels = {p.key: type_label(p.type, p.description) for p in service.properties}
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    for p in service.properties:
        label = labels[p.key]
        extra = maker_words(p.description)
        if seen[label] > 1 and extra and extra != label:
            labels[p.key] = f"{label} ({extra})"
    return labels


def spec_labels(spec: Spec) -> dict[str, dict[str, Any]]:
    """Per property key: its label, its service's label and iid, the unit symbol and the value-list words."""
    out: dict[str, dict[str, Any]] = {}
    for s in spec.services:
        labels = property_labels(s)
        for p in s.properties:
            out[p.key] = {"label": labels[p.key], "service": type_label(s.type, s.description), "siid": s.iid,
                          "facts": urn_name(s.type) == "device-information",
                          # what a sentence names: a service's on/off is the service itself ("Switch is On")
                          "thing": type_label(s.type, s.description) if urn_name(p.type) == "on" else labels[p.key],
                          "unit": unit_symbol(p.unit), "values": value_words(p)}
    return out


def value_words(prop: Property) -> dict[Any, str]:
    """A value-list as value → description."""
    return {v.value: v.description for v in prop.value_list or ()}
