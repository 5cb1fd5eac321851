"""The device side of OTA on the ingest path: ota_progress reaches the bus checked, the online state carries the
firmware version, a bad one is a dead letter; the pure rules of rollouts."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from ecohub.bootstrap import Services
from ecohub.connect.pipeline import Pipeline
from ecohub.errors import InvalidInput
from ecohub.ota.domain import bucket, check_stages, parse_version, stage_of
from ecohub.protocol import Topic
from ecohub.protocol.messages import OtaState


@pytest.fixture
def pipeline(services: Services, plug_model: str) -> tuple[Pipeline, str]:
    did = services.devices.provision(model=plug_model)[0].did
    return services.pipeline(), did


def test_ota_progress_is_decoded_and_bad_params_are_dead_letters(pipeline: tuple[Pipeline, str]) -> None:
    p, did = pipeline
    out = p.process(Topic.up(did), b'{"id": 5, "method": "ota_progress", "params": {"version": "2.0.0", '
                    b'"state": "failed", "code": -4023, "message": "bad"}}', 1)
    assert out.dead == [] and out.ota_progress is not None
    assert (out.ota_progress.state, out.ota_progress.code) == (OtaState.FAILED, -4023)
    bad = p.process(Topic.up(did), b'{"id": 6, "method": "ota_progress", "params": {"version": "2.0.0", '
                    b'"state": "flashing"}}', 1)
    assert [c for c, _ in bad.dead] == ["invalid_message"] and "params.state" in bad.dead[0][1]


def test_online_state_carries_the_firmware_version(pipeline: tuple[Pipeline, str]) -> None:
    p, did = pipeline
    out = p.process(Topic.state(did), b'{"online": true, "firmware_version": "1.4.2"}', 1)
    assert out.dead == [] and (out.online, out.firmware_version) == (True, "1.4.2")
    bad = p.process(Topic.state(did), b'{"online": true, "firmware_version": 142}', 1)
    assert [c for c, _ in bad.dead] == ["bad_state"] and "firmware_version" in bad.dead[0][1]


def test_versions_compare_numerically_and_bad_ones_are_refused() -> None:
    assert parse_version("2.10") > parse_version("2.9.9")
    assert parse_version("1.2") == parse_version("1.2.0")
    for bad in ("v1", "1..2", "1.2.3.4.5", ""):
        with pytest.raises(InvalidInput):
            parse_version(bad)


@given(st.lists(st.integers(1, 100), min_size=1, max_size=6, unique=True), st.text(min_size=1, max_size=20))
def test_every_device_has_one_stage_and_the_stages_nest(pcts: list[int], did: str) -> None:
    stages = sorted(pcts)
    if stages[-1] != 100:
        stages.append(100)
    check_stages(stages)
    i = stage_of(did, stages)
    assert bucket(did) < stages[i] and (i == 0 or bucket(did) >= stages[i - 1])
    assert stage_of(did, stages) == i  # deterministic
