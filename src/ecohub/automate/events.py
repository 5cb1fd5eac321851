"""Domain events of the automate context (published after the transaction that produced them committed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuleSaved:
    """A rule was created, changed, enabled or disabled; engines reload it."""

    rule_id: str
    home_id: str
    cell: str


@dataclass(frozen=True, slots=True)
class RuleDeleted:
    """A rule was deleted; engines drop it."""

    rule_id: str
    home_id: str
    cell: str


@dataclass(frozen=True, slots=True)
class RuleRan:
    """A rule's trigger matched and it was evaluated (the outcome says whether its actions ran)."""

    rule_id: str
    home_id: str
    cell: str
    outcome: str
