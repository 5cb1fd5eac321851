"""Pure rules of the twin: the states a desired value goes through on its way to the device."""

from __future__ import annotations

from enum import StrEnum


class DesiredState(StrEnum):
    """Where a desired value is: waiting for the device, on its way, answered (0 or an error code)."""

    PENDING = "pending"  # set while the device was offline: delivered when it comes back
    SENT = "sent"  # claimed by one hub process and published; waiting for the device's reply
    UNCONFIRMED = "unconfirmed"  # sent, but no reply came: sent again on the next reconnect
    ACKNOWLEDGED = "acknowledged"  # the device answered code 0
    FAILED = "failed"  # the device answered an error code
