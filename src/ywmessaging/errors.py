"""Errors with stable codes, raised anywhere and rendered once as problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class ConfigError(Exception):
    """Settings or command-line input that cannot work; the CLI prints it as one line."""


class OperationError(Exception):
    """An operator command failed in a known way; the CLI prints it as one line, exit 1."""


class AppError(Exception):
    """An HTTP-facing error: `status`, a stable `code`, a short `title` and optional detail."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        super().__init__(detail or self.title)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem document."""
        doc: dict[str, Any] = {
            "type": f"https://ywmessaging.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field of a request: its dotted path, a stable `code` and a human `detail`."""

    field: str
    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The problem document's entry in `errors`."""
        return {"field": self.field, "code": self.code, "detail": self.detail}


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class ValidationFailed(AppError):
    """422: one or more bad fields, every one listed in `errors` as {field, code, detail}.

    `field` (the first error's) and `detail` (every error's, joined) stay for older clients.
    """

    status, code, title = 422, "validation_failed", "The request is not valid"
    field_code = "invalid"   # the `errors[].code` of a one-field failure unless told

    def __init__(self, detail: str | None = None, *, field: str | None = None,
                 error_code: str | None = None, errors: Sequence[FieldError] | None = None,
                 **extra: Any) -> None:
        if not errors:
            errors = (FieldError(field or "", error_code or self.field_code,
                                 detail or self.title),)
        self.errors = tuple(errors)
        if detail is None:
            detail = "; ".join(e.detail for e in self.errors)
        super().__init__(detail, field=self.errors[0].field,
                         errors=[e.as_dict() for e in self.errors], **extra)


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class MethodNotAllowed(AppError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class TooManyRequests(AppError):
    status, code, title = 429, "too_many_requests", "Too many requests"


class ServiceUnavailable(AppError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class TenantNotFound(AppError):
    status, code, title = 404, "tenant_not_found", "Church not found"


class TenantSuspended(AppError):
    status, code, title = 423, "tenant_suspended", "This church's account is suspended"


class TenantUnavailable(ServiceUnavailable):
    code, title = "tenant_unavailable", "This church's database is unavailable"


class TenantCapacity(ServiceUnavailable):
    code, title = "tenant_capacity", "No database capacity right now"


class TenantSchemaOutdated(ServiceUnavailable):
    code, title = "tenant_schema_outdated", "This church's database is being upgraded"
