"""Rate limits of the hub (sign-in attempts, device connects), on the `limits` library's moving windows."""

from __future__ import annotations

import math
import time
from functools import cache
from typing import Any

from limits import RateLimitItem, parse, storage, strategies

from ecohub.errors import ErrorCode, TooManyRequests


@cache
def shared_storage(uri: str, key_prefix: str) -> Any:
    """The `limits` storage of a shared store (`redis://…`): one per process and URI, so one connection pool rather
    than one per limit; its errors arrive as `limits.errors.StorageError`."""
    return storage.storage_from_string(uri, key_prefix=key_prefix, wrap_exceptions=True)


class Throttle:
    """One limit (e.g. `10/15 minutes`) over keys; `storage_uri` is `memory://` (one process) or `redis://…`
    (every API process shares the counts)."""

    def __init__(self, limit: str, *, storage_uri: str = "memory://", what: str = "requests",
                 fixed_window: bool = False, key_prefix: str = "ecohub") -> None:
        self.item: RateLimitItem = parse(limit)
        # a moving window keeps every hit's time; large counts (pushes per day) use a fixed window's one counter
        strategy = strategies.FixedWindowRateLimiter if fixed_window else strategies.MovingWindowRateLimiter
        store = (storage.storage_from_string(storage_uri) if storage_uri.startswith("memory://")
                 else shared_storage(storage_uri, key_prefix))
        self.limiter: strategies.RateLimiter = strategy(store)
        self.what = what

    def hit(self, *key: str) -> None:
        """Count one event for `key`; raise TooManyRequests (with the seconds to wait) once over the limit."""
        if not self.limiter.hit(self.item, *key):
            self._refuse(*key)

    def check(self, *key: str) -> None:
        """Raise TooManyRequests if `key` is at its limit, without counting anything."""
        if not self.limiter.test(self.item, *key):
            self._refuse(*key)

    def allows(self, *key: str) -> bool:
        """Whether one more event for `key` stays within the limit (nothing counted)."""
        return bool(self.limiter.test(self.item, *key))

    def status(self, *key: str) -> tuple[int, int, int]:
        """(limit, remaining, seconds until the window has room again) for `key`, nothing counted."""
        stats = self.limiter.get_window_stats(self.item, *key)
        return self.item.amount, int(stats.remaining), max(0, math.ceil(stats.reset_time - time.time()))

    @property
    def window_s(self) -> int:
        """The length of the limit's window in seconds."""
        return int(self.item.get_expiry())

    def _refuse(self, *key: str) -> None:
        reset = self.limiter.get_window_stats(self.item, *key).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise TooManyRequests(f"too many {self.what}: try again in {wait} s", code=ErrorCode.RATE_LIMITED,
                              retry_after=wait)
