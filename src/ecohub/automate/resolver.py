"""Resolving a rule's device references against the specs of devices bound to the rule's home (save-time checks)."""

from __future__ import annotations

from typing import Any

from ecohub.auth import Principal, Scope
from ecohub.automate.parse import bad
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import EcohubError, ErrorCode, NotFound
from ecohub.home.domain import HomeRole, resolve_property
from ecohub.home.homes import HomeService
from ecohub.spec import CompiledSpec


class HomeResolver:
    """Checks that every device a rule names is bound to its home, and resolves names against each device's spec."""

    def __init__(self, p: Principal, home_id: str, *, homes: HomeService, devices: DeviceService,
                 products: ProductService) -> None:
        self.p = p
        self.home_id = home_id
        self.homes = homes
        self.devices = devices
        self.products = products
        self._specs: dict[str, CompiledSpec] = {}

    def spec(self, did: str, path: str) -> CompiledSpec:
        """The compiled spec of a device bound to the rule's home; refused with the path otherwise."""
        if did not in self._specs:
            try:
                access = self.homes.device_access(self.p, did, HomeRole.GUEST, Scope.AUTOMATIONS_WRITE)
            except EcohubError:
                access = None
            if access is None or access.home_id != self.home_id:
                raise bad(path, f"device {did} is not bound to this home", code=ErrorCode.DEVICE_NOT_IN_HOME)
            self._specs[did] = self.products.compiled(self.devices.get(did).model)
        return self._specs[did]

    def property(self, did: str, ref: str, path: str, *, write: bool) -> str:
        """The canonical key of a property the device has (writable when `write`)."""
        spec = self.spec(did, path)
        try:
            prop = resolve_property(spec.spec, str(ref))
        except EcohubError as err:
            raise bad(path, err.message, code=ErrorCode(err.code)) from err
        if write and not spec.properties[(prop.siid, prop.iid)].writable:
            raise bad(path, f"property {prop.key} ({prop.name}) of device {did} is not writable",
                      code=ErrorCode.PROPERTY_NOT_WRITABLE)
        return prop.key

    def check(self, did: str, key: str, value: Any, path: str) -> None:
        """Refuse values the property cannot take (type, range, step, value-list)."""
        siid, piid = (int(x) for x in key.split("."))
        problem = self.spec(did, path).properties[(siid, piid)].check(value)
        if problem is not None:
            raise bad(path, problem.message, code=ErrorCode(problem.kind))

    def _pick(self, table: dict[tuple[int, int], Any], ref: str, what: str, did: str, path: str) -> tuple[int, int]:
        siid, dot, iid = str(ref).partition(".")
        if dot and siid.isdigit() and iid.isdigit() and (int(siid), int(iid)) in table:
            return int(siid), int(iid)
        matches = [k for k, v in table.items() if v.name == ref or f"{k[0]}.{v.name}" == ref]
        if len(matches) != 1:
            how = "is ambiguous" if matches else "is not in the spec"
            raise bad(path, f"{what} {ref!r} of device {did} {how}", code=ErrorCode(f"unknown_{what}"))
        return matches[0]

    def event(self, did: str, ref: str, path: str) -> str:
        """The canonical `siid.eiid` of an event of the device."""
        siid, eiid = self._pick(self.spec(did, path).events, ref, "event", did, path)
        return f"{siid}.{eiid}"

    def action(self, did: str, ref: str, inputs: dict[int, Any], path: str) -> str:
        """The canonical `siid.aiid` of an action, its inputs complete and in range."""
        spec = self.spec(did, path)
        siid, aiid = self._pick(spec.actions, ref, "action", did, path)
        action = spec.actions[(siid, aiid)]
        extra = sorted(set(inputs) - set(action.in_))
        missing = sorted(set(action.in_) - set(inputs))
        if extra or missing:
            raise bad(path, f"action {siid}.{aiid} takes inputs {list(action.in_)}; missing {missing}, "
                            f"unexpected {extra}", code=ErrorCode.INVALID_ARGUMENT)
        for piid, value in inputs.items():
            problem = spec.check_value(siid, piid, value)
            if problem is not None:
                raise bad(path, f"input {piid}: {problem.message}", code=ErrorCode(problem.kind))
        return f"{siid}.{aiid}"


def not_found_rule(rule_id: str) -> NotFound:
    """The one answer for rules that do not exist and rules of homes the caller is not in."""
    return NotFound(f"no automation {rule_id}", code=ErrorCode.UNKNOWN_RULE)
