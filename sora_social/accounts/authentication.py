from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from sora_social.accounts.actions import authenticate_secret
from sora_social.accounts.models import ApiKey, User


def bearer_secret(authorization_header: str) -> str | None:
    scheme, _, secret = authorization_header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


class BearerKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer sk-ss-...`: developer API keys and mobile session tokens."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        secret = bearer_secret(header)
        if secret is None:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        api_key = authenticate_secret(secret)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Incorrect or revoked API key provided.")
        return api_key.user, api_key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


def request_user(request: Request | Any) -> User:
    """The signed-in user of a request behind an IsAuthenticated / login_required check."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user
