"""Errors that reach a client as a TMF error body (code, reason, message, status)."""

from __future__ import annotations

from typing import Any


class TmfError(Exception):
    status: int = 400
    code: str = "BAD_REQUEST"
    reason: str = "Bad request"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "status": str(self.status),
            "@type": "Error",
        }


class InvalidRequest(TmfError):
    status, code, reason = 400, "INVALID_BODY", "The request is not valid"


class Unauthorized(TmfError):
    status, code, reason = 401, "UNAUTHORIZED", "Authentication required"


class Forbidden(TmfError):
    status, code, reason = 403, "FORBIDDEN", "Not allowed for this role"


class NotFound(TmfError):
    status, code, reason = 404, "NOT_FOUND", "Resource not found"


class Conflict(TmfError):
    status, code, reason = 409, "CONFLICT", "Conflict with the current state"


class PreconditionFailed(TmfError):
    status, code, reason = 412, "PRECONDITION_FAILED", "The resource changed meanwhile"


class PayloadTooLarge(TmfError):
    status, code, reason = 413, "PAYLOAD_TOO_LARGE", "The request body is too large"


class UnsupportedMediaType(TmfError):
    status, code, reason = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported content type"


class UnknownReference(TmfError):
    status, code, reason = 422, "UNKNOWN_REFERENCE", "A referenced resource does not exist"


class IllegalTransition(TmfError):
    status, code, reason = 409, "ILLEGAL_TRANSITION", "This state change is not allowed"


class MethodNotAllowed(TmfError):
    status, code, reason = 405, "METHOD_NOT_ALLOWED", "Method not allowed"


class RetryLater(TmfError):
    """Refused for now; ``retry_after`` (seconds) goes into the ``Retry-After`` header."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class TooManyRequests(RetryLater):
    status, code, reason = 429, "TOO_MANY_REQUESTS", "Too many requests"


class ServiceUnavailable(RetryLater):
    """The database is out of reach for a moment (connections lost, a failover)."""

    status, code, reason = 503, "SERVICE_UNAVAILABLE", "Service unavailable"


class RefusedRows:
    """The refused rows of a batch, collected so that one answer names them all (the
    first ``shown``): ``add`` each, then ``raise_any``; nothing of the batch is stored.
    Refused only for references that name nothing, the answer is 422, else 400."""

    def __init__(self, item: str, noun: str, *, shown: int = 10) -> None:
        self.item, self.noun, self.shown = item, noun, shown
        self.messages: list[str] = []
        self.unknown_only = True

    def add(self, index: int, message: str, *, unknown: bool = False) -> None:
        self.messages.append(f"{self.item}[{index}]: {message}")
        self.unknown_only = self.unknown_only and unknown

    def raise_any(self) -> None:
        if not self.messages:
            return
        shown = "; ".join(self.messages[: self.shown])
        more = len(self.messages) - self.shown
        text = f"{len(self.messages)} {self.noun} refused, nothing stored: {shown}" + (
            f"; and {more} more" if more > 0 else ""
        )
        raise UnknownReference(text) if self.unknown_only else InvalidRequest(text)
