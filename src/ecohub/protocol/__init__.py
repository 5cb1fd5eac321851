"""The device protocol: wire structs, topic builders and error codes, shared by the SDK and the cloud."""

from ecohub.protocol.codes import Code
from ecohub.protocol.messages import (
    ActionParams,
    ActionResult,
    Argument,
    DecodeError,
    EventParams,
    Method,
    PropertyGet,
    PropertyResult,
    PropertyValue,
    RpcError,
    UpMessage,
    decode_up,
    encode,
)
from ecohub.protocol.topics import Channel, Topic, parse_topic, subject_of, topic_of

__all__ = [
    "ActionParams",
    "ActionResult",
    "Argument",
    "Channel",
    "Code",
    "DecodeError",
    "EventParams",
    "Method",
    "PropertyGet",
    "PropertyResult",
    "PropertyValue",
    "RpcError",
    "Topic",
    "UpMessage",
    "decode_up",
    "encode",
    "parse_topic",
    "subject_of",
    "topic_of",
]
