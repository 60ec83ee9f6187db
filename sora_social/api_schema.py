"""How the OpenAPI schema describes the project's own error shape (every path but /v1)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ApiErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # For validation errors: the field-by-field messages (declared in __init__: a field named
    # "fields" would shadow the serializer's own attribute).

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["fields"] = serializers.DictField(required=False)


class ApiErrorSerializer(serializers.Serializer):
    error = ApiErrorDetailSerializer()


def api_errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema responses for a view's errors: 401 (every view here authenticates) and `statuses`."""
    return {status: OpenApiResponse(ApiErrorSerializer) for status in (401, *statuses)}
