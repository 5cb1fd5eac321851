"""Wire models of the device protocol as msgspec structs (field names as in Xiaomi's MIoT JSON-RPC)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec

# Bounds of the decoder: a message id or device time beyond a signed 64-bit integer cannot be stored (SQLite and
# PostgreSQL BIGINT) and is no JSON-RPC id a device means; JSON nested deeper than MAX_DEPTH is refused before it
# reaches a store or a spec check (msgspec itself stops at the interpreter's recursion limit).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 32
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]


class Method(StrEnum):
    """The JSON-RPC methods of the protocol."""

    PROPERTIES_CHANGED = "properties_changed"
    EVENT_OCCURED = "event_occured"  # sic: MIoT's spelling
    SET_PROPERTIES = "set_properties"
    GET_PROPERTIES = "get_properties"
    ACTION = "action"
    OTA_UPDATE = "ota_update"  # cloud → device: install a firmware image
    OTA_PROGRESS = "ota_progress"  # device → cloud: how an ota_update is going, and its result


class PropertyValue(msgspec.Struct, forbid_unknown_fields=False):
    """One `{"siid", "piid", "value"}` item."""

    siid: int
    piid: int
    value: Any


class PropertyGet(msgspec.Struct):
    """One `{"siid", "piid"}` item of get_properties."""

    siid: int
    piid: int


class PropertyResult(msgspec.Struct, omit_defaults=True):
    """One item of a set/get_properties reply."""

    siid: int
    piid: int
    code: int = 0
    value: Any = msgspec.UNSET


class Argument(msgspec.Struct):
    """An event or action argument: `{"piid", "value"}`."""

    piid: int
    value: Any


class EventParams(msgspec.Struct):
    """params of event_occured."""

    siid: int
    eiid: int
    arguments: list[Argument] = msgspec.field(default_factory=list)


class ActionParams(msgspec.Struct, rename={"in_": "in"}):
    """params of an action request."""

    siid: int
    aiid: int
    in_: list[Argument] = msgspec.field(default_factory=list)


class ActionResult(msgspec.Struct, omit_defaults=True):
    """result of an action reply."""

    code: int = 0
    out: list[Argument] = msgspec.field(default_factory=list)


class RpcError(msgspec.Struct):
    """error of a failed reply."""

    code: int
    message: str = ""


class UpMessage(msgspec.Struct, omit_defaults=True):
    """Anything a device sends on `up`: a notification (method+params) or a reply (result|error)."""

    id: Int64
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: RpcError | None = None
    ts: Int64 | None = None

    @property
    def is_reply(self) -> bool:
        """True when this answers a cloud request rather than notifying."""
        return self.method is None


class DownMessage(msgspec.Struct, omit_defaults=True):
    """A cloud → device request."""

    id: int
    method: str
    params: Any


class OtaState(StrEnum):
    """The states a device reports in ota_progress (the cloud adds `offered` before the first report)."""

    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    DONE = "done"
    FAILED = "failed"


class OtaSignature(msgspec.Struct):
    """One signature of a firmware statement: who signed (`partner` or `brand`), the key's id, base64 Ed25519."""

    by: str
    key_id: str
    sig: str


class OtaUpdateParams(msgspec.Struct, omit_defaults=True):
    """params of ota_update: where the image is and what it must be (a device verifies all of it)."""

    version: str
    url: str
    sha256: str
    size: int
    signatures: list[OtaSignature]
    rollback: bool = False  # a campaign back to an older version: the only case a device installs a non-newer one


class OtaProgressParams(msgspec.Struct, omit_defaults=True):
    """params of ota_progress."""

    version: str
    state: OtaState
    progress: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    code: int = 0
    message: Annotated[str, msgspec.Meta(max_length=200)] = ""


def firmware_statement(model: str, version: str, sha256: str, size: int) -> bytes:
    """The bytes the partner and the brand sign for an image: it binds the content hash to its model and version."""
    return f"ecohub-firmware-v1\n{model}\n{version}\n{sha256}\n{size}".encode()


class DecodeError(ValueError):
    """The payload is not a valid protocol message; `path` names the offending part."""

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(message)
        self.path = path


_up_decoder = msgspec.json.Decoder(UpMessage)
_props_decoder = msgspec.json.Decoder(list[PropertyValue])
_event_decoder = msgspec.json.Decoder(EventParams)
_down_decoder = msgspec.json.Decoder(DownMessage)
_encoder = msgspec.json.Encoder()


def nesting_depth(payload: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings ignored)."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return 0 if not payload else 1  # cannot be deeper than the bound: skip the scan (the common case)
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def decode_up(payload: bytes) -> UpMessage:
    """Decode one `up` payload; raises DecodeError with the reason (malformed, wrong shape, too deep, too big)."""
    if nesting_depth(payload) > MAX_DEPTH:
        raise DecodeError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return _up_decoder.decode(payload)
    except msgspec.DecodeError as err:
        raise DecodeError(str(err)) from err
    except RecursionError as err:  # pragma: no cover - the depth check above refuses these first
        raise DecodeError("JSON nested too deeply") from err


def decode_properties(raw: msgspec.Raw) -> list[PropertyValue]:
    """params of properties_changed."""
    try:
        return _props_decoder.decode(raw)
    except msgspec.DecodeError as err:
        raise DecodeError(str(err).replace("$", "params", 1), path="params") from err


def decode_event(raw: msgspec.Raw) -> EventParams:
    """params of event_occured."""
    try:
        return _event_decoder.decode(raw)
    except msgspec.DecodeError as err:
        raise DecodeError(str(err).replace("$", "params", 1), path="params") from err


_ota_progress_decoder = msgspec.json.Decoder(OtaProgressParams)


def decode_ota_progress(raw: msgspec.Raw) -> OtaProgressParams:
    """params of ota_progress."""
    try:
        return _ota_progress_decoder.decode(raw)
    except msgspec.DecodeError as err:
        raise DecodeError(str(err).replace("$", "params", 1), path="params") from err


def decode_down(payload: bytes) -> DownMessage:
    """Decode a cloud → device request (used by the SDK)."""
    try:
        return _down_decoder.decode(payload)
    except msgspec.DecodeError as err:
        raise DecodeError(str(err)) from err


def decode_raw(raw: msgspec.Raw) -> Any:
    """Decode a Raw field to plain Python values."""
    return msgspec.json.decode(raw)


def encode(obj: Any) -> bytes:
    """Encode a struct or plain value as compact JSON."""
    return _encoder.encode(obj)
