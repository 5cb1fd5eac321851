"""Use cases of cross-brand control: a user's devices with friendly names, their twins, control by name or key."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from ecohub.auth import Principal, Role, Scope
from ecohub.connect.commands import CommandLink
from ecohub.connect.service import DeviceInfo, DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import EcohubError, ErrorCode, InvalidInput
from ecohub.home.domain import HomeRole, describe_property, resolve_property
from ecohub.home.homes import DeviceAccess, HomeService
from ecohub.protocol import Method
from ecohub.twin.service import TwinService


def encode_cursor(did: str) -> str:
    """An opaque page cursor (the last did of the page)."""
    return base64.urlsafe_b64encode(did.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The did a cursor stands for; InvalidInput when it is not one of ours."""
    try:
        did = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidInput("not a cursor of this listing", code=ErrorCode.INVALID_CURSOR) from err
    if not did or len(did) > 40 or not did.isprintable():
        raise InvalidInput("not a cursor of this listing", code=ErrorCode.INVALID_CURSOR)
    return did


def epoch_twin(twin: dict[str, Any], since_ms: int) -> dict[str, Any]:
    """A twin cut to one binding epoch: nothing reported or desired before the current owner bound the device."""
    props = {k: v for k, v in twin["properties"].items() if v["ts"] >= since_ms}
    pending = {k: v for k, v in twin["pending"].items() if v["ts"] >= since_ms}
    desired = {k: v for k, v in twin.get("desired", {}).items() if v["ts"] >= since_ms}
    delta = {k: v for k, v in twin.get("delta", {}).items() if v["ts"] >= since_ms}
    return {**twin, "properties": props, "pending": pending, "desired": desired, "delta": delta}


class UserDeviceService:
    """What a phone app shows and does: every bound device, whatever partner made it, through one API."""

    def __init__(self, homes: HomeService, devices: DeviceService, products: ProductService,
                 twin: TwinService, commands: CommandLink) -> None:
        self.homes = homes
        self.devices = devices
        self.products = products
        self.twin = twin
        self.commands = commands

    def visible(self, p: Principal, did: str, least: HomeRole = HomeRole.GUEST,
                scope: Scope = Scope.DEVICES_READ) -> tuple[DeviceInfo, int]:
        """The device if the caller may use it, and the first ms of its data they may see (a user: the binding
        epoch; an app: the same, for granted devices and with `scope`; a partner: its own products' devices; an
        operator: any)."""
        if p.role in (Role.USER, Role.APP):
            since_ms = self.homes.device_access(p, did, least, scope).since_ms
            return self.devices.get(did), since_ms
        return self.devices.get(did, caller=p), 0

    async def command(self, p: Principal, did: str, method: str, params: Any, *,
                      timeout_s: float | None = None) -> dict[str, Any]:
        """Check the caller may control the device, let items name a property by `prop`, send, await the reply."""
        # the access check reads the database: off the event loop that also carries every device's reply
        info, params = await asyncio.to_thread(self._checked_command, p, did, method, params)
        sender = self.commands.require()
        return await sender.send(did, method, params, actor=p.actor, timeout_s=timeout_s, info=info)

    def _checked_command(self, p: Principal, did: str, method: str, params: Any) -> tuple[DeviceInfo, Any]:
        info, _ = self.visible(p, did, HomeRole.MEMBER, Scope.DEVICES_CONTROL)
        return info, self.normalize_command(info.model, method, params)

    async def set_properties(self, p: Principal, did: str, values: dict[str, Any], *,
                             timeout_s: float | None = None) -> dict[str, Any]:
        """Set properties by name or `siid.piid` (owners and members); waits for the device."""
        params = await asyncio.to_thread(self.set_params, p, did, values)
        return await self.commands.require().send(did, Method.SET_PROPERTIES, params, actor=p.actor,
                                                  timeout_s=timeout_s)

    def twin_of(self, access: DeviceAccess) -> dict[str, Any]:
        """The twin limited to the caller's binding epoch."""
        return epoch_twin(self.twin.get(access.cell, access.did), access.since_ms)

    def _view(self, access: DeviceAccess, name: str) -> dict[str, Any]:
        info = self.devices.get(access.did)
        product = self.products.get(info.model)
        twin = self.twin_of(access)
        out: dict[str, Any] = {
            "did": access.did, "name": name, "role": access.role.label,
            # a shared device shows nothing of the owner's home; `share_id` lets the invitee leave the share
            "home_id": access.home_id if access.share_id is None else None,
            "room_id": access.room_id, "shared": access.share_id is not None, "share_id": access.share_id,
            "model": info.model, "product": product.name, "category": product.category, "partner_id": info.partner_id,
            "online": twin["online"], "version": twin["version"],
        }
        spec = self.products.compiled(info.model).spec
        props = []
        for prop in spec.properties():
            entry = describe_property(spec, prop)
            reported = twin["properties"].get(prop.key)
            pending = twin["pending"].get(prop.key)
            entry["reported"] = reported
            entry["desired"] = pending
            entry["pending"] = pending is not None
            props.append(entry)
        out["properties"] = props
        out["actions"] = [{"key": f"{a.siid}.{a.iid}", "name": a.name, "description": a.description,
                           "in": [f"{a.siid}.{i}" for i in a.in_], "out": [f"{a.siid}.{o}" for o in a.out]}
                          for s in spec.services for a in s.actions]
        return out

    def of_user(self, p: Principal, home_id: str | None = None) -> list[dict[str, Any]]:
        """The caller's devices (one home or all) with product names, online state and friendly properties."""
        accesses = self.homes.accessible_devices(p, home_id, Scope.DEVICES_READ)
        names = self.homes.device_names(self.homes.cell_of(p, Scope.DEVICES_READ), [a.did for a in accesses])
        return [self._view(a, names.get(a.did, "")) for a in accesses]  # "": unbound meanwhile

    def page(self, p: Principal, *, cursor: str | None = None, limit: int = 100,
             include_twin: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the caller's devices (an app: the granted ones) in did order after `cursor`, each with its
        twin when asked (one call instead of one per device); → (items, the cursor of the next page or None)."""
        after = decode_cursor(cursor) if cursor else ""
        accesses = sorted((a for a in self.homes.accessible_devices(p, None, Scope.DEVICES_READ) if a.did > after),
                          key=lambda a: a.did)
        chunk = accesses[:limit]
        names = self.homes.device_names(self.homes.cell_of(p, Scope.DEVICES_READ), [a.did for a in chunk])
        items = []
        for a in chunk:
            view = self._view(a, names.get(a.did, ""))
            if include_twin:
                view["twin"] = self.twin_of(a)
            items.append(view)
        more = len(accesses) > limit
        return items, encode_cursor(chunk[-1].did) if more and chunk else None

    async def set_many(self, p: Principal, changes: list[tuple[str, dict[str, Any]]], *,
                       timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Set properties on several devices at once (each checked like a single set); every device answers for
        itself: one refusal or timeout does not fail the others."""
        async def one(did: str, values: dict[str, Any]) -> dict[str, Any]:
            try:
                return {"did": did, **await self.set_properties(p, did, values, timeout_s=timeout_s)}
            except EcohubError as err:
                return {"did": did, "status": "error", "status_code": err.status, **err.to_dict()}
        return list(await asyncio.gather(*(one(did, values) for did, values in changes)))

    def get(self, p: Principal, did: str) -> dict[str, Any]:
        """One device with every property: friendly facts, reported value, desired value and whether it is pending."""
        access = self.homes.device_access(p, did, HomeRole.GUEST, Scope.DEVICES_READ)
        return self._view(access, self.homes.device_names(access.cell, [did]).get(did, ""))

    def set_params(self, p: Principal, did: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Resolve `{"switch.on": true, "2.2": 1}` into set_properties params (members and owners only)."""
        self.homes.device_access(p, did, HomeRole.MEMBER, Scope.DEVICES_CONTROL)
        if not values:
            raise InvalidInput("give at least one property to set", code=ErrorCode.INVALID_COMMAND)
        spec = self.products.compiled(self.devices.get(did).model).spec
        params = []
        for ref, value in values.items():
            prop = resolve_property(spec, ref)
            params.append({"siid": prop.siid, "piid": prop.iid, "value": value})
        return params

    def normalize_command(self, model: str, method: str, params: Any) -> Any:
        """Let command items name a property by `prop` (name or `siid.piid`) instead of siid/piid."""
        if method not in (Method.SET_PROPERTIES, Method.GET_PROPERTIES) or not isinstance(params, list):
            return params
        spec = self.products.compiled(model).spec
        out = []
        for item in params:
            if isinstance(item, dict) and "prop" in item:
                if not isinstance(item["prop"], str):
                    raise InvalidInput("prop must be a property name or 'siid.piid'", code=ErrorCode.INVALID_COMMAND)
                prop = resolve_property(spec, item["prop"])
                rest = {k: v for k, v in item.items() if k != "prop"}
                item = {**rest, "siid": prop.siid, "piid": prop.iid}
            out.append(item)
        return out

