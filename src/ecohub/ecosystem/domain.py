"""Pure rules of the ecosystem: product lifecycle stages, legal transitions and their guards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ecohub.errors import Conflict, InvalidInput

MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*){2,}$")


class Stage(StrEnum):
    """Lifecycle of a product."""

    CONCEPT = "concept"
    DEFINED = "defined"
    IN_DEVELOPMENT = "in_development"
    CERTIFICATION = "certification"
    APPROVED = "approved"
    LAUNCHED = "launched"
    DISCONTINUED = "discontinued"
    REJECTED = "rejected"


ORDER = [
    Stage.CONCEPT,
    Stage.DEFINED,
    Stage.IN_DEVELOPMENT,
    Stage.CERTIFICATION,
    Stage.APPROVED,
    Stage.LAUNCHED,
    Stage.DISCONTINUED,
]

TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CONCEPT: frozenset({Stage.DEFINED, Stage.DISCONTINUED}),
    Stage.DEFINED: frozenset({Stage.IN_DEVELOPMENT, Stage.DISCONTINUED}),
    Stage.IN_DEVELOPMENT: frozenset({Stage.CERTIFICATION, Stage.DISCONTINUED}),
    Stage.CERTIFICATION: frozenset({Stage.APPROVED, Stage.REJECTED}),
    Stage.REJECTED: frozenset({Stage.IN_DEVELOPMENT, Stage.DISCONTINUED}),
    Stage.APPROVED: frozenset({Stage.LAUNCHED, Stage.DISCONTINUED}),
    Stage.LAUNCHED: frozenset({Stage.DISCONTINUED}),
    Stage.DISCONTINUED: frozenset(),
}

# Test units exist from certification on; rejected products keep their units for the next round.
PROVISIONABLE = frozenset({Stage.CERTIFICATION, Stage.REJECTED, Stage.APPROVED, Stage.LAUNCHED})


@dataclass(frozen=True, slots=True)
class TransitionContext:
    """What the guards may look at: whether a valid spec exists and which markets have a passing report."""

    has_valid_spec: bool
    target_markets: tuple[str, ...] = ()
    passed_markets: frozenset[str] = frozenset()


def check_model_id(model: str) -> str:
    """Model ids look like `brand.kind.version` (e.g. `acme.plug.v1`, `chuangmi.plug.212a01`)."""
    if not MODEL_RE.match(model or "") or len(model) > 64:
        raise InvalidInput(
            f"model id {model!r} must look like brand.kind.version (lower-case, e.g. acme.plug.v1)",
            code="invalid_model",
        )
    return model


def check_transition(current: Stage, target: Stage, ctx: TransitionContext) -> None:
    """Raise Conflict when the move is illegal or a guard fails; say why."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise Conflict(
            f"a product cannot go from {current} to {target} (allowed from {current}: {allowed})",
            code="illegal_transition",
        )
    if target == Stage.DEFINED and not ctx.has_valid_spec:
        raise Conflict("a product is defined only with a valid spec", code="guard_failed")
    if target == Stage.APPROVED:
        missing = [m for m in ctx.target_markets if m not in ctx.passed_markets]
        if not ctx.target_markets:
            raise Conflict("approval needs target markets and a passing certification report for each",
                           code="guard_failed")
        if missing:
            raise Conflict(
                "approval needs a passing certification report for every target market; missing: "
                + ", ".join(missing),
                code="guard_failed",
            )


def path_to(current: Stage, target: Stage) -> list[Stage]:
    """The forward steps from `current` to `target` along the main line (for `--stage` on import)."""
    if current == target:
        return []
    if current not in ORDER or target not in ORDER or ORDER.index(target) < ORDER.index(current):
        raise Conflict(f"cannot move a product forward from {current} to {target}", code="illegal_transition")
    return ORDER[ORDER.index(current) + 1 : ORDER.index(target) + 1]
