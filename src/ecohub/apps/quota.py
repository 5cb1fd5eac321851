"""Quotas of the developer platform: requests per minute per app and per user, pushes per day per app, on the
hub's `limits` throttles (in process memory, or in Redis shared by every hub and API process); answers carry the
IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from limits.errors import StorageError

from ecohub.apps.registry import AppRegistry, Client
from ecohub.auth import Principal, Role
from ecohub.errors import ErrorCode, NotFound, TooManyRequests, Unavailable
from ecohub.throttle import Throttle

log = logging.getLogger(__name__)
CLIENT_CACHE_S = 5.0
USER_RPM = 1200  # a person's own apps and scripts (their phone app among them): generous, still bounded


@dataclass(frozen=True, slots=True)
class Window:
    """One quota as it stands for a caller: its policy name, size, window and what is left."""

    policy: str
    quota: int
    window_s: int
    remaining: int
    reset_s: int


def headers_of(windows: list[Window]) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` (structured-field lists, one item per quota that applies)."""
    if not windows:
        return {}
    return {"RateLimit-Policy": ", ".join(f'"{w.policy}";q={w.quota};w={w.window_s}' for w in windows),
            "RateLimit": ", ".join(f'"{w.policy}";r={w.remaining};t={w.reset_s}' for w in windows)}


class Quotas:
    """Counts requests of app and user tokens, and pushes of apps; refuses over the limit with 429."""

    def __init__(self, registry: AppRegistry, *, storage_uri: str = "memory://", key_prefix: str = "ecohub",
                 user_rpm: int = USER_RPM) -> None:
        """`storage_uri` is `memory://` (this process counts alone) or `redis://…` (every process of the hub counts
        in one place, under `key_prefix`)."""
        self.registry = registry
        self.storage_uri = storage_uri
        self.key_prefix = key_prefix
        self._throttles: dict[str, Throttle] = {}
        self.user_rpm = user_rpm
        self._clients: dict[str, tuple[float, Client | None]] = {}

    def client(self, app_id: str) -> Client | None:
        """The app's limits, cached for a few seconds (every request and every push asks)."""
        now = time.monotonic()
        hit = self._clients.get(app_id)
        if hit is None or now - hit[0] > CLIENT_CACHE_S:
            hit = (now, self.registry.client(app_id))
            self._clients[app_id] = hit
        return hit[1]

    def _throttle(self, limit: str, what: str) -> Throttle:
        key = f"{limit}|{what}"
        if key not in self._throttles:
            self._throttles[key] = Throttle(limit, storage_uri=self.storage_uri, what=what,
                                            fixed_window=limit.endswith("/day"), key_prefix=self.key_prefix)
        return self._throttles[key]

    def request(self, p: Principal) -> list[Window]:
        """Count one API request of the caller: an app per app and per app+user, a user per user; operator and
        partner tokens are not metered here. Over a limit → TooManyRequests carrying the headers."""
        checks: list[tuple[str, Throttle, tuple[str, ...]]] = []
        if p.role == Role.APP and p.app_id:
            client = self.client(p.app_id)
            rpm = client.rpm_limit if client else 600
            checks.append(("app", self._throttle(f"{rpm}/minute", "requests of this app"), ("app", p.app_id)))
            checks.append(("user", self._throttle(f"{self.user_rpm}/minute", "requests for this user"),
                           ("user", p.subject)))
        elif p.role == Role.USER:
            checks.append(("user", self._throttle(f"{self.user_rpm}/minute", "requests for this user"),
                           ("user", p.subject)))
        return self._count(checks)

    def push(self, app_id: str, count: int = 1) -> int:
        """Count `count` pushes of an app against its daily quota; → how many of them it allows (those counted)."""
        client = self.client(app_id)
        throttle = self._throttle(f"{client.pushes_per_day if client else 100_000}/day", "pushes of this app")
        try:
            if throttle.limiter.hit(throttle.item, "push", app_id, cost=count):
                return count
            left = throttle.status("push", app_id)[1]  # near the end of the day's quota: what is left of it
            return left if 0 < left < count and throttle.limiter.hit(throttle.item, "push", app_id, cost=left) else 0
        except StorageError:
            log.warning("the quota store is unreachable: pushes of %s not counted", app_id, exc_info=True)
            return count

    def _count(self, checks: list[tuple[str, Throttle, tuple[str, ...]]]) -> list[Window]:
        windows = []
        refused: Window | None = None
        for name, throttle, key in checks:
            try:
                ok = throttle.limiter.hit(throttle.item, *key)
                quota, remaining, reset = throttle.status(*key)
            except StorageError:  # an outage of the shared store does not take the API down: uncounted, logged
                log.warning("the quota store is unreachable: a request of %s not counted", key[1], exc_info=True)
                continue
            window = Window(name, quota, throttle.window_s, remaining, reset)
            windows.append(window)
            if not ok and refused is None:
                refused = window
        if refused is not None:
            wait = max(1, refused.reset_s)
            err = TooManyRequests(f"over the {refused.policy} quota of {refused.quota} requests per "
                                  f"{refused.window_s} s: try again in {wait} s", code=ErrorCode.RATE_LIMITED,
                                  retry_after=wait)
            err.headers = headers_of(windows)  # type: ignore[attr-defined]
            raise err
        return windows

    def usage(self, app_id: str, *, caller: Principal | None = None) -> dict[str, Any]:
        """What an app used of its quotas (its owner or the operator may look)."""
        client = self.registry.get(app_id, caller=caller)
        if client is None:  # pragma: no cover - get raises
            raise NotFound(f"no app {app_id!r}", code=ErrorCode.UNKNOWN_APP)
        rpm = self._throttle(f"{client.rpm_limit}/minute", "requests of this app")
        day = self._throttle(f"{client.pushes_per_day}/day", "pushes of this app")
        try:
            q, left, reset = rpm.status("app", app_id)
            pq, pleft, preset = day.status("push", app_id)
        except StorageError as err:
            raise Unavailable("the quota store cannot be reached; try again later") from err
        return {"app_id": app_id, "status": client.status,
                "requests": {"per_minute": q, "used": q - left, "remaining": left, "reset_s": reset},
                "pushes": {"per_day": pq, "used": pq - pleft, "remaining": pleft, "reset_s": preset},
                "user_requests_per_minute": self.user_rpm}
