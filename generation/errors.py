"""Refusals in the OpenAI API's terms: a message, a type, the parameter at fault and a code.

Domain code (actions, gates) raises these; `generation.api.errors.openai_exception_handler`
renders them under /v1 and `sora_social.errors.api_exception_handler` under /api.
"""

from __future__ import annotations

from rest_framework import exceptions, status


class OpenAIError(exceptions.APIException):
    status_code: int = status.HTTP_400_BAD_REQUEST
    error_type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(OpenAIError):
    pass


class Conflict(OpenAIError):
    status_code = status.HTTP_409_CONFLICT


class QuotaExceeded(OpenAIError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class RateLimited(OpenAIError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    error_type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class VideoWithdrawn(OpenAIError):
    status_code = status.HTTP_410_GONE
    code = "video_withdrawn"


class VideoAwaitingApproval(Conflict):
    code = "video_awaiting_approval"
