"""The suite's REST client of the hub under test: product, test units, commands, twin, dead letters, refusals."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from ecohub.certify.target import HubUnderTest
from ecohub.errors import Conflict, EcohubError, ErrorCode, Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable

API_PREFIX = "/api/v1"
HTTP_SLACK_S = 5.0  # beyond a command's own timeout: the hub answers 504 itself, the client must not cut it first
DEFAULT_TIMEOUT_S = 15.0

_BY_STATUS: dict[int, type[EcohubError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
                                            413: InvalidInput, 422: InvalidInput}


class HubApi:
    """`async with HubApi(hub) as api:` — operator calls on the hub's public REST API; errors become EcohubErrors."""

    def __init__(self, hub: HubUnderTest) -> None:
        self.hub = hub
        self._http = httpx.AsyncClient(base_url=hub.api_url.rstrip("/") + API_PREFIX, timeout=DEFAULT_TIMEOUT_S,
                                       headers={"Authorization": f"Bearer {hub.token}"})

    async def __aenter__(self) -> HubApi:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                    wait_s: float = DEFAULT_TIMEOUT_S) -> Any:
        try:
            r = await self._http.request(method, path, json=json, params=params,
                                         timeout=wait_s)
        except httpx.HTTPError as err:
            raise Unavailable(f"the hub's API at {self.hub.api_url} did not answer {method} {path}: "
                              f"{type(err).__name__}: {err}", code=ErrorCode.HUB_UNREACHABLE) from err
        if r.is_success:
            return r.json() if r.content else None
        try:
            error = r.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", r.text[:200]
        # 5xx (504 command timeout, 503 no broker connection) are retryable: Unavailable keeps their own code
        raise _BY_STATUS.get(r.status_code, Unavailable)(message, code=ErrorCode.parse(code))

    async def product(self, model: str) -> dict[str, Any]:
        """The product with its current spec document, spec hash and version, target markets."""
        product: dict[str, Any] = await self._call("GET", f"/products/{model}")
        return product

    async def provision(self, model: str) -> dict[str, str]:
        """One new test unit: did, secret, bind code, model, cell (shown once)."""
        body: dict[str, Any] = await self._call("POST", "/devices", json={"model": model})
        return {k: str(v) for k, v in body.items() if k in ("did", "secret", "bind_code", "model", "cell")}

    async def revoke(self, did: str) -> None:
        """Disable a test unit's credentials (the broker drops its session)."""
        await self._call("POST", f"/devices/{did}/revoke")

    async def command(self, did: str, method: str, params: Any, *, timeout_s: float) -> dict[str, Any]:
        """Send a command through the hub (validated against the spec) and return the device's reply."""
        reply: dict[str, Any] = await self._call("POST", f"/devices/{did}/commands",
                                                 json={"method": method, "params": params, "timeout_s": timeout_s},
                                                 wait_s=timeout_s + HTTP_SLACK_S)
        return reply

    async def twin(self, did: str) -> dict[str, Any]:
        """The hub's last known state of a unit: online, properties {"siid.piid": {value, ts}}."""
        twin: dict[str, Any] = await self._call("GET", f"/devices/{did}/twin")
        return twin

    async def dead_letters(self, did: str, *, limit: int) -> list[dict[str, Any]]:
        """Messages of the unit the hub refused, newest first."""
        rows: list[dict[str, Any]] = await self._call("GET", "/dead-letters", params={"did": did, "limit": limit})
        return rows

    async def refusals(self, did: str) -> list[dict[str, Any]] | None:
        """What the hub's broker refused the unit ({ts (unix ms), action, topic, reason}), oldest first; None when
        this hub cannot tell (its broker keeps no refusal log, or the hub predates the route)."""
        try:
            body: dict[str, Any] = await self._call("GET", f"/devices/{did}/refusals")
        except Unavailable as err:
            if err.code == "refusals_unavailable":
                return None
            raise
        except NotFound as err:
            if err.code == "not_found":  # no such route (an unknown device says unknown_device)
                return None
            raise
        refusals: list[dict[str, Any]] = body["refusals"]
        return refusals
