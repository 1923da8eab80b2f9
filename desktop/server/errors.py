"""Errors in OpenAI's shape: the ApiError a route raises and the status every Atelier error maps to.

Its own module so the routes and the app both use it without importing each other.
"""

from __future__ import annotations

from desktop.engines.errors import ContextOverflowError, PackNotFoundError, RequestError, ResourceError

from .pool import BusyError, QueueFullError


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param


def status_of(exc: BaseException) -> tuple[int, str, str | None]:
    """(HTTP status, OpenAI error type, code) for an Atelier error."""
    if isinstance(exc, ApiError):
        return exc.status, exc.kind, exc.code
    if isinstance(exc, PackNotFoundError):
        return 404, "invalid_request_error", "model_not_found"
    if isinstance(exc, ContextOverflowError):
        return 400, "invalid_request_error", "context_length_exceeded"
    if isinstance(exc, RequestError):
        return 400, "invalid_request_error", None
    if isinstance(exc, QueueFullError):
        return 429, "rate_limit_error", "queue_full"
    if isinstance(exc, (BusyError, ResourceError)):
        return 503, "server_error", "model_loading"
    return 500, "server_error", None
