"""Spec diffs: what changed between two versions and whether it breaks existing devices or clients."""

from __future__ import annotations

from dataclasses import dataclass

from ecohub.spec.domain import Property, Spec


@dataclass(frozen=True, slots=True)
class SpecChange:
    """One difference between two spec versions."""

    path: str
    kind: str  # added | removed | changed
    detail: str
    breaking: bool


def diff_specs(old: Spec, new: Spec) -> list[SpecChange]:
    """List additions, removals and changes of services, properties, actions and events."""
    changes: list[SpecChange] = []
    old_props = {p.key: p for p in old.properties()}
    new_props = {p.key: p for p in new.properties()}
    for key in sorted(old_props.keys() - new_props.keys()):
        changes.append(SpecChange(f"property {key}", "removed", old_props[key].name, True))
    for key in sorted(new_props.keys() - old_props.keys()):
        changes.append(SpecChange(f"property {key}", "added", new_props[key].name, False))
    for key in sorted(old_props.keys() & new_props.keys()):
        a, b = old_props[key], new_props[key]
        if a.format != b.format:
            changes.append(SpecChange(f"property {key}", "changed", f"format {a.format} → {b.format}", True))
        if not a.access <= b.access:
            lost = ", ".join(sorted(a.access - b.access))
            changes.append(SpecChange(f"property {key}", "changed", f"access lost: {lost}", True))
        if b.access - a.access:
            gained = ", ".join(sorted(b.access - a.access))
            changes.append(SpecChange(f"property {key}", "changed", f"access gained: {gained}", False))
        changes += _values(key, a, b)
    for kind, getter in (("action", "actions"), ("event", "events")):
        old_items = {(s.iid, x.iid) for s in old.services for x in getattr(s, getter)}
        new_items = {(s.iid, x.iid) for s in new.services for x in getattr(s, getter)}
        for siid, iid in sorted(old_items - new_items):
            changes.append(SpecChange(f"{kind} {siid}.{iid}", "removed", "", True))
        for siid, iid in sorted(new_items - old_items):
            changes.append(SpecChange(f"{kind} {siid}.{iid}", "added", "", False))
    return changes


def _values(key: str, a: Property, b: Property) -> list[SpecChange]:
    """Allowed values: a wider range (same step grid) or more list entries only add; anything else breaks."""
    path = f"property {key}"
    if a.value_range != b.value_range:
        ra, rb = a.value_range, b.value_range
        if ra is None or rb is None:  # a range where there was none narrows; dropping one widens
            return [SpecChange(path, "changed", "value-range added" if ra is None else "value-range removed",
                               ra is None)]
        wider = (rb.min <= ra.min and rb.max >= ra.max and rb.step == ra.step
                 and (ra.min - rb.min) % (rb.step or 1) == 0)
        detail = f"value-range [{ra.min}, {ra.max}, {ra.step}] → [{rb.min}, {rb.max}, {rb.step}]"
        return [SpecChange(path, "changed", detail + (" (wider)" if wider else ""), not wider)]
    if a.value_list != b.value_list:
        old = {item.value for item in a.value_list or ()}
        new = {item.value for item in b.value_list or ()}
        if old <= new and a.value_list and b.value_list:
            added = ", ".join(str(v) for v in sorted(new - old, key=str))
            return [SpecChange(path, "changed", f"value-list entries added: {added}" if added
                               else "value-list descriptions changed", False)]
        gone = ", ".join(str(v) for v in sorted(old - new, key=str)) or "the list itself"
        return [SpecChange(path, "changed", f"value-list entries removed: {gone}", True)]
    return []


def compatible(changes: list[SpecChange]) -> bool:
    """Whether every change only adds (MIoT's rule for a spec version of the same major)."""
    return not any(c.breaking for c in changes)
