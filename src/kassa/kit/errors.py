"""The one error base of Kassa.

Every error a client can cause is a ``KassaError`` with a stable ``code`` and an HTTP status.
Domain errors live beside their service and subclass it; the native API renders them as RFC 9457
problem documents, each dialect in its own document's shape. Anything that is not a
``KassaError`` is a bug and answers 500.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict


class FieldError(TypedDict):
    field: str
    code: str
    message: str


class KassaError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.title
        self.errors = errors or []
        self.extra = extra
        super().__init__(self.detail)


class NotFound(KassaError):
    code = "not_found"
    status = 404
    title = "Not found"


class Unauthorized(KassaError):
    code = "unauthorized"
    status = 401
    title = "Missing or invalid API key"


class Forbidden(KassaError):
    code = "forbidden"
    status = 403
    title = "The API key lacks the scope this request needs"


class ValidationFailed(KassaError):
    code = "validation_failed"
    status = 422
    title = "The request is not valid"


class InvalidAmount(KassaError):
    code = "invalid_amount"
    status = 422
    title = "The amount is not valid"


class MalformedJson(KassaError):
    code = "malformed_json"
    status = 400
    title = "The request body is not valid JSON"


class UnknownParameter(KassaError):
    code = "unknown_parameter"
    status = 400
    title = "The request has a query parameter this operation does not take"


class UnsupportedMediaType(KassaError):
    code = "unsupported_media_type"
    status = 415
    title = "The request body must be JSON"


class PayloadTooLarge(KassaError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class MethodNotAllowed(KassaError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class ServiceUnavailable(KassaError):
    """The database (or another part Kassa needs) cannot be reached: nothing was done, and the
    same request may be sent again after ``retry_after`` seconds."""

    code = "service_unavailable"
    status = 503
    title = "Kassa cannot reach its database; try again shortly"
    retry_after: ClassVar[int] = 1


class InternalError(KassaError):
    """A bug: what a client is told when Kassa fails in a way it did not foresee (it is logged
    with its traceback; the client learns nothing else)."""

    code = "internal_error"
    status = 500
    title = "Internal error"
