"""Spec diffs: what changed between two versions and whether it breaks existing devices or clients."""

from __future__ import annotations

from dataclasses import dataclass

from ecohub.spec.domain import Spec


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
        if a.value_range != b.value_range or a.value_list != b.value_list:
            changes.append(SpecChange(f"property {key}", "changed", "allowed values changed", True))
    for kind, getter in (("action", "actions"), ("event", "events")):
        old_items = {(s.iid, x.iid) for s in old.services for x in getattr(s, getter)}
        new_items = {(s.iid, x.iid) for s in new.services for x in getattr(s, getter)}
        for siid, iid in sorted(old_items - new_items):
            changes.append(SpecChange(f"{kind} {siid}.{iid}", "removed", "", True))
        for siid, iid in sorted(new_items - old_items):
            changes.append(SpecChange(f"{kind} {siid}.{iid}", "added", "", False))
    return changes
