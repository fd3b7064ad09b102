"""One error vocabulary: AppError subclasses carry the contract code; one renderer."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from braze_bridge.logging import describe_exception, get_logger

log = get_logger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """`{"error": {"code", "message", "details"}}` — every non-2xx answer has this shape."""

    error: ErrorDetail


class AppError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(AppError):
    status_code, code = 400, "bad_request"


class InvalidJson(AppError):
    status_code, code = 400, "invalid_json"


class Unauthorized(AppError):
    status_code, code = 401, "unauthorized"


class Forbidden(AppError):
    status_code, code = 403, "forbidden"


class NotFound(AppError):
    status_code, code = 404, "not_found"


class RequestTimeout(AppError):
    status_code, code = 408, "request_timeout"
    # The rest of a timed-out body may still be on its way: close rather than read it.
    headers = {"connection": "close"}  # noqa: RUF012 - never mutated


class Conflict(AppError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code, code = 415, "unsupported_media_type"


class ValidationFailed(AppError):
    status_code, code = 422, "validation_error"


class NotReady(AppError):
    status_code, code = 503, "not_ready"


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "not_ready",
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status_code, headers=headers)


UNEXPECTED_ERROR_LOGGED = "braze_bridge.unexpected_error_logged"
"""Scope key set once a bug was answered and logged, so the server does not log it again."""


def unexpected_error_response(exc: BaseException) -> JSONResponse:
    """A bug must still answer in the contract's shape, and say nothing about internals.

    It is logged as one line, described as every logged exception is (logging.py): its type,
    the types it was raised from, the SQLSTATE and where it was raised; never its message.
    """
    log.error("http.unhandled_error", **describe_exception(exc))
    return error_response(500, "internal_error", "internal error; the request was not completed")


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        fields.append({"field": ".".join(loc), "message": err.get("msg", ""), "type": err["type"]})
    return fields


def install_error_handlers(app: FastAPI) -> None:
    """Render AppError, FastAPI validation errors and Starlette 404/405 in the contract's shape."""

    async def on_app_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)  # noqa: S101 - registered for AppError only
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        fields = _field_errors(exc)
        named = ", ".join(f["field"] or "body" for f in fields[:5])
        return error_response(422, "validation_error", f"invalid request: {named}", fields)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(
            exc.status_code, code, message, headers=dict(exc.headers or {}) or None
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware calls this for anything unhandled, then raises it
        # again for the server to log; the app swallows that second raise (see the scope key).
        request.scope[UNEXPECTED_ERROR_LOGGED] = exc
        return unexpected_error_response(exc)

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
