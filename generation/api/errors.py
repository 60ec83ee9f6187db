"""Errors in the OpenAI API's shape: {"error": {"message", "type", "param", "code"}}.

Domain code raises `OpenAIError` subclasses (or DRF's own exceptions); `openai_exception_handler`
renders every exception a /v1 view raises in that one shape, so SDK clients parse them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from generation.errors import OpenAIError, RateLimited
from sora_social.errors import openai_error_body as error_body


def _first_validation_error(detail: Any, param: str | None = None) -> tuple[str | None, str, str]:
    """Walk a DRF ValidationError detail to its first message: (param, message, code)."""
    if isinstance(detail, dict):
        field, inner = next(iter(detail.items()))
        name = None if field == "non_field_errors" else str(field)
        return _first_validation_error(inner, name if param is None else f"{param}.{name}")
    if isinstance(detail, list):
        return _first_validation_error(detail[0], param)
    code = getattr(detail, "code", None) or "invalid"
    return param, str(detail), str(code)


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, OpenAIError):
        body = error_body(exc.message, error_type=exc.error_type, param=exc.param, code=exc.code)
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        return Response(body, status=exc.status_code, headers=headers)
    if isinstance(exc, exceptions.ValidationError):
        param, message, code = _first_validation_error(exc.detail)
        if param:
            message = f"{param}: {message}"
        return Response(
            error_body(message, error_type="invalid_request_error", param=param, code=code),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        message = (
            "You didn't provide an API key. Send 'Authorization: Bearer YOUR_KEY'."
            if isinstance(exc, exceptions.NotAuthenticated)
            else str(exc.detail)
        )
        return Response(
            error_body(message, error_type="invalid_request_error", code="invalid_api_key"),
            status=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if isinstance(exc, exceptions.NotFound):
        return Response(
            error_body(str(exc.detail), error_type="invalid_request_error", code="not_found"),
            status=status.HTTP_404_NOT_FOUND,
        )
    if isinstance(exc, exceptions.APIException):
        return Response(
            error_body(
                str(exc.detail),
                error_type="invalid_request_error",
                code=str(exc.default_code),
            ),
            status=exc.status_code,
        )
    return None
