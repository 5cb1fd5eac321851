"""What one delivery round sends: claimed queue messages grouped into POSTs, one message each or, for a subscription
that asked for batches, up to its `batch_max` of its messages in created order, and the signed body of each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ecohub.apps.domain import batch_body, batch_id


class Claimed(Protocol):
    """A claimed queue row, as the claim returns it (the columns a send and its record need)."""

    @property
    def id(self) -> str: ...
    @property
    def webhook_id(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def payload_json(self) -> str: ...  # the payload as stored (a JSON object)
    @property
    def created_ms(self) -> int: ...


class Queued(NamedTuple):
    """A message this process just queued (already leased to it), in the claim's shape."""

    id: str
    webhook_id: str
    attempts: int
    created_ms: int
    payload_json: str


class Hook(Protocol):
    """The subscription a POST goes to, as the claim reads it."""

    @property
    def id(self) -> str: ...
    @property
    def app_id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def batch_max(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Post:
    """One signed POST to a subscription: its messages (one, or a batch of up to the subscription's `batch_max`)."""

    hook: Hook
    messages: tuple[Claimed, ...]

    @property
    def batched(self) -> bool:
        return self.hook.batch_max > 1

    def message_id(self) -> str:
        """The `webhook-id`: the message's own id, or the batch's (derived from the ids it carries)."""
        return batch_id([m.id for m in self.messages]) if self.batched else self.messages[0].id

    def body(self) -> bytes:
        """The JSON body: the message's payload, or `{"type": "batch", "events": [...]}`."""
        if self.batched:
            return batch_body([(m.id, m.payload_json) for m in self.messages])
        return self.messages[0].payload_json.encode()


def group(rows: Iterable[Claimed], hooks: Mapping[str, Hook]) -> list[Post]:
    """The POSTs for claimed rows: per subscription in created order, cut at its `batch_max`; oldest POST first."""
    by_hook: dict[str, list[Claimed]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r.created_ms, r.id)):  # ids sort in queueing order within a millisecond
        by_hook[r.webhook_id].append(r)
    posts = []
    for hook_id, messages in by_hook.items():
        hook = hooks[hook_id]
        size = max(1, hook.batch_max)
        posts += [Post(hook, tuple(messages[i:i + size])) for i in range(0, len(messages), size)]
    return sorted(posts, key=lambda p: (p.messages[0].created_ms, p.messages[0].id))
