"""Result and error codes of the device protocol (MIoT-compatible where MIoT defines them)."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """`code` values in replies; 0 is success, negative values are errors (see docs/protocol.md)."""

    OK = 0
    # request-level errors (JSON-RPC style)
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    # MIoT property/action errors
    SERVICE_NOT_FOUND = -4001
    PROPERTY_NOT_READABLE = -4002
    PROPERTY_NOT_FOUND = -4003
    PROPERTY_NOT_WRITABLE = -4004
    ACTION_NOT_FOUND = -4005
    VALUE_OUT_OF_RANGE = -4006
    WRONG_TYPE = -4007
    DEVICE_BUSY = -4008
    INTERNAL_ERROR = -4010
    # firmware updates (ota_update / ota_progress)
    OTA_VERSION_NOT_NEWER = -4020
    OTA_DOWNLOAD_FAILED = -4021
    OTA_HASH_MISMATCH = -4022
    OTA_BAD_SIGNATURE = -4023
    OTA_INSTALL_FAILED = -4024
    OTA_REVERTED = -4025  # set by the cloud: the device came back on its old version after reporting done
    OTA_TIMEOUT = -4026  # set by the cloud: no result within the campaign's device timeout

    @property
    def reason(self) -> str:
        """A short human description of the code."""
        return _REASONS[self]


_REASONS: dict[Code, str] = {
    Code.OK: "success",
    Code.PARSE_ERROR: "payload is not valid JSON",
    Code.INVALID_REQUEST: "not a valid JSON-RPC message",
    Code.METHOD_NOT_FOUND: "unknown method",
    Code.INVALID_PARAMS: "params have the wrong shape",
    Code.SERVICE_NOT_FOUND: "service not found",
    Code.PROPERTY_NOT_READABLE: "property not readable",
    Code.PROPERTY_NOT_FOUND: "property not found",
    Code.PROPERTY_NOT_WRITABLE: "property not writable",
    Code.ACTION_NOT_FOUND: "action not found",
    Code.VALUE_OUT_OF_RANGE: "value out of range",
    Code.WRONG_TYPE: "value has the wrong type",
    Code.DEVICE_BUSY: "device busy",
    Code.INTERNAL_ERROR: "internal device error",
    Code.OTA_VERSION_NOT_NEWER: "firmware version is not newer than the installed one",
    Code.OTA_DOWNLOAD_FAILED: "firmware download failed",
    Code.OTA_HASH_MISMATCH: "firmware image does not match its sha256 or size",
    Code.OTA_BAD_SIGNATURE: "firmware signature does not verify",
    Code.OTA_INSTALL_FAILED: "firmware install failed",
    Code.OTA_REVERTED: "device came back on its old firmware version",
    Code.OTA_TIMEOUT: "no firmware update result in time",
}
