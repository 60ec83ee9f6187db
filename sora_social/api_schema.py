"""How the OpenAPI schema describes the project's own error shape (every path but /v1)."""

from __future__ import annotations

from rest_framework import serializers


class ApiErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # For validation errors: the field-by-field messages.
    fields = serializers.DictField(required=False)


class ApiErrorSerializer(serializers.Serializer):
    error = ApiErrorDetailSerializer()
