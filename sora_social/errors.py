"""Every error leaves as JSON, whatever raised it, DEBUG or not.

Two shapes, one per family of clients:

- under /v1, the OpenAI shape `{"error": {"message", "type", "param", "code"}}`, which the
  OpenAI SDKs parse;
- everywhere else (the app's /api, /healthz, any API client), the project's shape
  `{"error": {"code", "message"}}`, plus `"fields": {name: [messages]}` when the request
  failed validation.

A browser (its Accept header prefers text/html) on a web page (`/`, `/accounts/...`,
`/admin/`) still gets an HTML page, and in DEBUG the technical page, as developers expect.

An outage is answered, not crashed on: the database down (OperationalError, InterfaceError) or
the broker down, when it reaches a view, is a 503 with Retry-After; any other unexpected
exception is a 500 that says nothing of the internals and is logged with its traceback.

Three layers cooperate: `JSONErrorMiddleware.process_exception` answers exceptions raised by
views; the handler views (`handler400` ... `handler500` in sora_social.urls, and
CSRF_FAILURE_VIEW) answer the errors Django itself turns into pages; and the middleware's
`__call__`, first in MIDDLEWARE, turns whatever non-JSON error response is left (DEBUG's
technical pages, a bare 405) into JSON with the same status and headers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

import kombu.exceptions
import redis.exceptions
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django import db
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.views import csrf, defaults
from rest_framework import exceptions as api_exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# Paths whose every answer is JSON, whatever the client accepts.
OPENAI_PREFIX = "/v1/"
API_PREFIXES = (OPENAI_PREFIX, "/api/", "/healthz")
RETRY_AFTER_SECONDS = 5

DATABASE_OUTAGES: tuple[type[Exception], ...] = (db.OperationalError, db.InterfaceError)
BROKER_OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)
# Exceptions Django itself answers with a 400, 403 or 404 (through the handlers below).
CLIENT_ERRORS: tuple[type[Exception], ...] = (
    Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError
)

SERVER_ERROR_MESSAGE = "The server had an error while processing your request."


def _is_under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) or path == prefix.rstrip("/")


def is_openai_path(path: str) -> bool:
    return _is_under(path, OPENAI_PREFIX)


def wants_html(request: HttpRequest) -> bool:
    """A browser on a web page: HTML errors. API paths and API clients: JSON."""
    if any(_is_under(request.path, prefix) for prefix in API_PREFIXES):
        return False
    return request.get_preferred_type(["application/json", "text/html"]) == "text/html"


def openai_error_body(
    message: str, *, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI API's error shape (every path under /v1)."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def api_error_body(
    code: str, message: str, *, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The project's error shape (every path but /v1)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def status_code_name(status: int) -> str:
    """`not_found`, `method_not_allowed`, ...: the code of an error that carries no other."""
    try:
        return HTTPStatus(status).name.lower()
    except ValueError:
        return "client_error" if status < 500 else "server_error"


def error_response(
    request: HttpRequest,
    status: int,
    *,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """An error in the shape the request's path calls for."""
    if is_openai_path(request.path):
        error_type = "server_error" if status >= 500 else "invalid_request_error"
        body = openai_error_body(message, error_type=error_type, code=code)
    else:
        body = api_error_body(code, message)
    return JsonResponse(body, status=status, headers=headers)


def _outage(exception: BaseException) -> tuple[str, str] | None:
    """(code, message) when the exception means a service we need is down, else None."""
    if isinstance(exception, DATABASE_OUTAGES):
        return "database_unavailable", "The database is unavailable; retry in a few seconds."
    if isinstance(exception, BROKER_OUTAGES):
        return "broker_unavailable", "The message broker is unavailable; retry in a few seconds."
    return None


def outage_or_server_error(request: HttpRequest, exception: BaseException | None) -> JsonResponse:
    outage = _outage(exception) if exception is not None else None
    if outage is not None:
        code, message = outage
        return error_response(
            request, 503, code=code, message=message,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return error_response(request, 500, code="server_error", message=SERVER_ERROR_MESSAGE)


def _message_for_status(request: HttpRequest, status: int) -> str:
    if status == 404:
        return f"Nothing found at {request.path}."
    if status == 405:
        return f"Method {request.method} is not allowed on {request.path}."
    if status >= 500:
        return SERVER_ERROR_MESSAGE
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return f"Error {status}."


def _is_json(response: HttpResponseBase) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


# Headers a converted response must not carry over: they describe the old body.
_BODY_HEADERS = {"content-type", "content-length", "content-encoding", "content-disposition"}


def _as_json(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    if response.status_code < 400 or _is_json(response) or wants_html(request):
        return response
    status = response.status_code
    converted = error_response(
        request, status, code=status_code_name(status), message=_message_for_status(request, status)
    )
    for header, value in response.items():
        if header.lower() not in _BODY_HEADERS:
            converted[header] = value  # Allow, Retry-After, Content-Range, WWW-Authenticate...
    converted.cookies = response.cookies
    # Not response.close(): that sends request_finished (closing the database connection)
    # in the middle of the request. An error page holds no file to release.
    return converted


class JSONErrorMiddleware:
    """First in MIDDLEWARE: views' exceptions and every error page leave as JSON."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return _as_json(request, cast(HttpResponseBase, self.get_response(request)))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = cast(Awaitable[HttpResponseBase], self.get_response(request))
        return _as_json(request, await response)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if isinstance(exception, CLIENT_ERRORS) or wants_html(request):
            return None  # Django answers it: the handlers below, or a browser's own page
        outage = _outage(exception)
        if outage is not None:
            logger.warning(
                "%s %s answered 503: %s (%s: %s)", request.method, request.path, outage[0],
                type(exception).__name__, exception,
            )
        else:
            logger.error(
                "%s %s failed", request.method, request.path, exc_info=exception
            )
        return outage_or_server_error(request, exception)


# --- Handler views (sora_social.urls: handler400, handler403, handler404, handler500) ----------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if wants_html(request):
        return defaults.bad_request(request, exception)
    return error_response(
        request, 400, code="bad_request", message=_message_for_status(request, 400)
    )


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if wants_html(request):
        return defaults.permission_denied(request, exception)
    return error_response(
        request, 403, code="permission_denied", message="You do not have permission to do this."
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if wants_html(request):
        return defaults.page_not_found(request, exception)
    return error_response(
        request, 404, code="not_found", message=_message_for_status(request, 404)
    )


_OUTAGE_PAGE = (
    "<!doctype html><html lang='en'><head><title>Service unavailable</title></head><body>"
    "<h1>Service Unavailable (503)</h1><p>Please try again in a few seconds.</p></body></html>"
)


def server_error(request: HttpRequest) -> HttpResponse:
    """Called while Django handles the exception, so sys.exc_info() names it."""
    exception = sys.exc_info()[1]
    if wants_html(request):
        if exception is not None and _outage(exception) is not None:
            return HttpResponse(
                _OUTAGE_PAGE, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        return defaults.server_error(request)
    return outage_or_server_error(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form post without a valid CSRF token."""
    if wants_html(request):
        return csrf.csrf_failure(request, reason)
    return error_response(
        request, 403, code="csrf_failed", message=f"CSRF verification failed: {reason}"
    )


# --- The app's REST API (REST_FRAMEWORK["EXCEPTION_HANDLER"]) ------------------------------------


def _first_message(detail: Any, field: str | None = None) -> str:
    if isinstance(detail, dict) and detail:
        name, inner = next(iter(detail.items()))
        inner_field = None if name == api_settings.NON_FIELD_ERRORS_KEY else name
        return _first_message(inner, inner_field if field is None else f"{field}.{name}")
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], field)
    return f"{field}: {detail}" if field else str(detail)


def api_exception_handler(exception: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handling (status, WWW-Authenticate, Retry-After) with the project's shape.

    Returns None for what DRF does not know (an outage, a bug): the view re-raises it and
    JSONErrorMiddleware answers.
    """
    if isinstance(exception, Http404):
        exception = api_exceptions.NotFound()
    elif isinstance(exception, PermissionDenied):
        exception = api_exceptions.PermissionDenied()
    response = drf_exception_handler(exception, context)
    if response is None or not isinstance(exception, api_exceptions.APIException):
        return response
    if isinstance(exception, api_exceptions.ValidationError):
        detail = exception.detail
        fields = (
            detail
            if isinstance(detail, dict)
            else {api_settings.NON_FIELD_ERRORS_KEY: detail}
        )
        response.data = api_error_body("invalid", _first_message(fields), fields=fields)
    else:
        codes = exception.get_codes()
        # A refusal that names its own code (generation.errors.OpenAIError) keeps it here too.
        explicit = getattr(exception, "code", None)
        if isinstance(explicit, str):
            code = explicit
        else:
            code = codes if isinstance(codes, str) else exception.default_code
        response.data = api_error_body(str(code), str(exception.detail))
    return response
