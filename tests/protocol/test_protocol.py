"""Wire structs and topics of the device protocol."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecohub.protocol import Channel, Topic, decode_up, encode, parse_topic
from ecohub.protocol.messages import DecodeError, decode_event, decode_properties


def test_design_examples_decode() -> None:
    m = decode_up(b'{"id": 41, "method": "properties_changed", "params": [{"siid": 2, "piid": 1, "value": true}]}')
    assert m.id == 41 and not m.is_reply
    assert decode_properties(m.params)[0].value is True
    e = decode_up(b'{"id": 42, "method": "event_occured", "params": {"siid": 5, "eiid": 1, '
                  b'"arguments": [{"piid": 1, "value": 3}]}}')
    assert decode_event(e.params).arguments[0].value == 3
    r = decode_up(b'{"id": 7, "error": {"code": -4004, "message": "property not writable"}}')
    assert r.is_reply and r.error is not None and r.error.code == -4004


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b'{"method": "x"}', b'{"id": "7"}', b'{"id": 1.5}'])
def test_malformed_payloads_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_up(payload)


def test_topics() -> None:
    assert Topic.up("eu-1") == "ecohub/eu-1/up"
    assert parse_topic("ecohub/eu-1/state") == Topic("eu-1", Channel.STATE)
    for bad in ["ecohub/eu-1", "ecohub//up", "other/eu-1/up", "ecohub/eu-1/up/x", "ecohub/+/up", "ecohub/eu-1/cmd"]:
        assert parse_topic(bad) is None
    assert Topic.all_up("ingest") == "$share/ingest/ecohub/+/up"


@given(did=st.text(alphabet="abcdef0123456789-", min_size=1, max_size=30), ch=st.sampled_from(list(Channel)))
def test_topic_round_trip(did: str, ch: Channel) -> None:
    assert parse_topic(str(Topic(did, ch))) == Topic(did, ch)


def test_encode_is_compact_json() -> None:
    assert encode({"id": 1, "method": "get_properties", "params": []}) == \
        b'{"id":1,"method":"get_properties","params":[]}'
