"""The error root of ecohub: every error says who can act on it and carries a stable machine code."""

from __future__ import annotations

from typing import Any


class EcohubError(Exception):
    """Root of all ecohub errors; `code` is stable and machine-readable."""

    code: str = "error"
    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The error as the REST API and `--json` CLI output render it."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}


class InvalidInput(EcohubError):
    """The caller sent something wrong; fixing the request fixes it."""

    code = "invalid_input"
    status = 422
    exit_code = 2


class NotFound(EcohubError):
    """The thing named does not exist (or the caller may not know it exists)."""

    code = "not_found"
    status = 404
    exit_code = 3


class Unauthorized(EcohubError):
    """No valid credentials were presented."""

    code = "unauthorized"
    status = 401
    exit_code = 4


class Forbidden(EcohubError):
    """Credentials are valid but do not allow this."""

    code = "forbidden"
    status = 403
    exit_code = 4


class Conflict(EcohubError):
    """The request clashes with the current state (duplicate, illegal transition)."""

    code = "conflict"
    status = 409
    exit_code = 5


class PayloadTooLarge(InvalidInput):
    """The request body or message exceeds the allowed size."""

    code = "payload_too_large"
    status = 413


class Unavailable(EcohubError):
    """A dependency is down or slow; retrying later may succeed."""

    code = "unavailable"
    status = 503
    exit_code = 6


class Timeout(Unavailable):
    """A device or dependency did not answer in time."""

    code = "timeout"
    status = 504
