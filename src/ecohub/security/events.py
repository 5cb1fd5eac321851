"""Domain events of the security audit (published after the audit run committed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FindingOpened:
    """A check found a new problem (a critical one also goes to the operator's webhook)."""

    finding_id: str
    check_id: str
    severity: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FindingResolved:
    """The condition behind a finding is gone."""

    finding_id: str
    check_id: str
    subject: str
