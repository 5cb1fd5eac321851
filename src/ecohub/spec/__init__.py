"""Product specs: the MIoT-spec-shaped model, its validation, compiled value validators and diffs (pure)."""

from ecohub.spec.compiled import CompiledSpec, ValueProblem, compile_spec
from ecohub.spec.diff import SpecChange, diff_specs
from ecohub.spec.domain import (
    FORMATS,
    Access,
    Action,
    Event,
    Property,
    Service,
    Spec,
    SpecInvalid,
    SpecProblem,
    spec_hash,
)
from ecohub.spec.parse import parse_spec

__all__ = [
    "FORMATS",
    "Access",
    "Action",
    "CompiledSpec",
    "Event",
    "Property",
    "Service",
    "Spec",
    "SpecChange",
    "SpecInvalid",
    "SpecProblem",
    "ValueProblem",
    "compile_spec",
    "diff_specs",
    "parse_spec",
    "spec_hash",
]
