"""The spec model accepts real miot-spec-v2 documents unchanged and reports every problem with its path."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecohub.spec import SpecInvalid, compile_spec, diff_specs, parse_spec
from ecohub.spec.compiled import out_of_range_value, random_value
from tests.conftest import SPECS, load_spec

REAL = sorted(p.stem for p in SPECS.glob("*.json"))


@pytest.mark.parametrize("name", REAL)
def test_real_documents_parse_unchanged(name: str) -> None:
    doc = load_spec(name)
    before = copy.deepcopy(doc)
    spec = parse_spec(doc)
    assert doc == before
    assert spec.document is doc
    assert spec.properties(), "a real device has properties"
    assert len(spec.hash) == 64


def _problems(doc: dict) -> list[str]:
    with pytest.raises(SpecInvalid) as exc:
        parse_spec(doc)
    return [str(p) for p in exc.value.problems]


def test_every_problem_is_reported_with_its_path() -> None:
    doc = load_spec("cuco.plug.v3")
    svc = doc["services"]
    ranged = [(i, j) for i, s in enumerate(svc) for j, p in enumerate(s.get("properties", [])) if "value-range" in p]
    multi = [i for i, s in enumerate(svc) if len(s.get("properties", [])) >= 2 and i != ranged[0][0]]
    (ri, rj), mi = ranged[0], multi[0]
    svc[ri]["properties"][rj]["value-range"] = [10, 1, 1]
    svc[mi]["properties"][0]["format"] = "hex"
    svc[mi]["properties"][1]["access"] = ["read", "execute"]
    svc[-1]["iid"] = svc[-2]["iid"]
    problems = _problems(doc)
    n = len(svc) - 1
    assert f"services[{ri}].properties[{rj}].value-range: min > max (10 > 1)" in problems, problems
    assert any(p.startswith(f"services[{mi}].properties[0].format: unknown format 'hex'") for p in problems), problems
    assert any(p.startswith(f"services[{mi}].properties[1].access[1]: unknown access flag") for p in problems)
    assert any(p.startswith(f"services[{n}].iid: duplicate service iid") for p in problems), problems
    assert len(problems) == 4


def test_duplicate_property_iid_value_list_and_refs() -> None:
    doc = {
        "type": "urn:miot-spec-v2:device:outlet:0000A002:test:1",
        "description": "Outlet",
        "services": [{
            "iid": 2, "type": "urn:miot-spec-v2:service:switch:0000780C:test:1", "description": "Switch",
            "properties": [
                {"iid": 1, "type": "urn:miot-spec-v2:property:on:00000006:test:1", "format": "bool",
                 "access": ["read", "write"]},
                {"iid": 1, "type": "urn:miot-spec-v2:property:mode:00000008:test:1", "format": "uint8",
                 "access": ["read"],
                 "value-list": [{"value": 1, "description": "a"}, {"value": 1, "description": "b"}]},
                {"iid": 3, "type": "urn:miot-spec-v2:property:level:00000009:test:1", "format": "uint8",
                 "access": ["read"], "value-range": [0, 300, 1]},
                {"iid": 4, "type": "urn:miot-spec-v2:property:x:0000000A:test:1", "format": "bool",
                 "access": ["read"], "value-range": [0, 1, 1]},
            ],
            "actions": [{"iid": 1, "type": "urn:miot-spec-v2:action:toggle:00002811:test:1", "in": [9], "out": []}],
            "events": [{"iid": 1, "type": "urn:miot-spec-v2:event:x:00005001:test:1", "arguments": ["a"]}],
        }],
    }
    problems = _problems(doc)
    joined = "\n".join(problems)
    assert "services[0].properties[1].iid: duplicate property iid 1" in joined
    assert "services[0].properties[1].value-list[1].value: duplicate value 1" in joined
    assert "services[0].properties[2].value-range: [0, 300] exceeds the bounds of uint8" in joined
    assert "services[0].properties[3].value-range: not allowed on format 'bool'" in joined
    assert "services[0].actions[0].in[0]: refers to property iid 9" in joined
    assert "services[0].events[0].arguments[0]: must be a property iid" in joined


def test_not_a_document() -> None:
    assert _problems([]) == ["$: a spec document must be a JSON object"]  # type: ignore[arg-type]
    assert "services: missing" in _problems({"type": "urn:miot-spec-v2:device:x:1:y:1"})


@pytest.mark.parametrize("name", REAL)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_drawn_values_are_valid_and_out_of_range_values_are_refused(name: str, seed: int) -> None:
    """Property test: the simulator's values always pass the compiled checker; crafted bad ones never do."""
    compiled = compile_spec(parse_spec(load_spec(name)))
    rnd = random.Random(seed)
    for (_siid, _piid), cp in compiled.properties.items():
        value = random_value(cp.prop, rnd)
        assert cp.check(value) is None, (cp.prop.key, value)
        bad = out_of_range_value(cp.prop)
        if bad is not None:
            assert cp.check(bad) is not None, (cp.prop.key, bad)
        wrong = "text" if cp.prop.format != "string" else 1
        assert cp.check(wrong) is not None and cp.check(wrong).kind == "wrong_type"  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(-1000, 1000), span=st.integers(0, 1000), step=st.integers(1, 50), v=st.integers(-3000, 3000))
def test_int_range_and_step(lo: int, span: int, step: int, v: int) -> None:
    """A value is accepted exactly when it is inside [min, max] and on the step grid from min."""
    doc = {"type": "urn:miot-spec-v2:device:x:1:y:1", "services": [{"iid": 1, "type": "urn:s", "properties": [
        {"iid": 1, "type": "urn:p", "format": "int32", "access": ["read"], "value-range": [lo, lo + span, step]}]}]}
    check = compile_spec(parse_spec(doc)).properties[(1, 1)].check
    expected = lo <= v <= lo + span and (v - lo) % step == 0
    assert (check(v) is None) == expected


def test_bool_is_not_an_integer_and_floats_accept_ints() -> None:
    doc = load_spec("yeelink.light.spot2")
    compiled = compile_spec(parse_spec(doc))
    assert compiled.check_value(2, 1, 1) is not None  # bool property refuses 1
    floats = [k for k, cp in compiled.properties.items() if cp.prop.format == "float"]
    assert floats
    k = floats[0]
    lo = compiled.properties[k].prop.value_range.min  # type: ignore[union-attr]
    assert compiled.check_value(*k, int(lo)) is None


def test_diff_marks_breaking_changes() -> None:
    old = parse_spec(load_spec("cuco.plug.v3"))
    doc = load_spec("cuco.plug.v3")
    removed = doc["services"][1]["properties"].pop()
    doc["services"][1]["properties"].append({**removed, "iid": 99})
    changes = diff_specs(old, parse_spec(doc))
    assert any(c.kind == "removed" and c.breaking for c in changes)
    assert any(c.kind == "added" and not c.breaking for c in changes)
    assert diff_specs(old, old) == []


def test_fixture_dir_is_not_empty() -> None:
    assert len(REAL) >= 4 and Path(SPECS / "SOURCES.md").exists()
