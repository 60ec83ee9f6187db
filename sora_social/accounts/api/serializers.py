from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from sora_social.accounts.models import ApiKey, User


class ProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "handle", "display_name", "bio", "avatar", "birth_date", "email")
        read_only_fields = ("id", "handle")


class SignupSerializer(serializers.Serializer):
    handle = serializers.CharField(max_length=30)
    password = serializers.CharField(write_only=True, max_length=128)
    email = serializers.EmailField(required=False, default="")
    display_name = serializers.CharField(required=False, default="", max_length=80)
    birth_date = serializers.DateField(required=False, allow_null=True, default=None)

    def validate_handle(self, handle: str) -> str:
        handle = handle.lower()
        try:
            User._meta.get_field("handle").run_validators(handle)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None
        if User.objects.filter(handle=handle).exists():
            raise serializers.ValidationError("This handle is taken.")
        return handle

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        password_validation.validate_password(attrs["password"], User(handle=attrs["handle"]))
        return attrs


class LoginSerializer(serializers.Serializer):
    handle = serializers.CharField(max_length=30)
    password = serializers.CharField(write_only=True, max_length=128)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ("id", "name", "kind", "prefix", "created_at", "last_used_at", "revoked_at")
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="")
