from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sora_social.accounts.actions import (
    access_api_key,
    access_user_by_handle,
    do_block,
    do_create_user,
    do_follow,
    do_issue_api_key,
    do_revoke_api_key,
    do_unblock,
    do_unfollow,
    do_update_profile,
)
from sora_social.accounts.api.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    LoginSerializer,
    ProfileSerializer,
    SignupSerializer,
)
from sora_social.accounts.authentication import request_user
from sora_social.accounts.models import ApiKey, User
from sora_social.api_schema import api_errors
from sora_social.errors import api_error_body


def _session_token_response(user: User, status_code: int) -> Response:
    issued = do_issue_api_key(user, name="mobile app", kind=ApiKey.Kind.SESSION)
    return Response(
        {"token": issued.secret, "user": ProfileSerializer(user).data}, status=status_code
    )


class SignupView(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(request=SignupSerializer, responses={201: None})
    def post(self, request: Request) -> Response:
        serializer = SignupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = do_create_user(**serializer.validated_data)
        except DjangoValidationError as error:
            raise ValidationError(error.messages) from None
        return _session_token_response(user, status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(request=LoginSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            handle=serializer.validated_data["handle"].lower(),
            password=serializer.validated_data["password"],
        )
        if user is None:
            return Response(
                api_error_body("invalid_credentials", "Wrong handle or password."),
                status=status.HTTP_401_UNAUTHORIZED,
            )
        return _session_token_response(user, status.HTTP_200_OK)  # type: ignore[arg-type]


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiKey) and request.auth.kind == ApiKey.Kind.SESSION:
            do_revoke_api_key(request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses=ProfileSerializer)
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(request.user).data)

    @extend_schema(request=ProfileSerializer, responses=ProfileSerializer)
    def patch(self, request: Request) -> Response:
        serializer = ProfileSerializer(request_user(request), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = do_update_profile(request_user(request), **serializer.validated_data)
        return Response(ProfileSerializer(user).data)


class ApiKeyListView(APIView):
    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        keys = ApiKey.objects.filter(user=request_user(request), kind=ApiKey.Kind.API).order_by(
            "-created_at"
        )
        return Response(ApiKeySerializer(keys, many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeySerializer})
    def post(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = do_issue_api_key(request_user(request), name=serializer.validated_data["name"])
        body = dict(ApiKeySerializer(issued.api_key).data)
        body["key"] = issued.secret
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, key_id: int) -> Response:
        do_revoke_api_key(access_api_key(request_user(request), key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


_PERSON_ERRORS = api_errors(400, 404)


class FollowView(APIView):
    """Follow someone; two follows in opposite directions make mutual followers."""

    @extend_schema(request=None, responses={204: None, **_PERSON_ERRORS})
    def put(self, request: Request, handle: str) -> Response:
        do_follow(request_user(request), access_user_by_handle(handle))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None, **_PERSON_ERRORS})
    def delete(self, request: Request, handle: str) -> Response:
        do_unfollow(request_user(request), access_user_by_handle(handle))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BlockView(APIView):
    """Block someone: they may never use your cameos, whatever else you allowed."""

    @extend_schema(request=None, responses={204: None, **_PERSON_ERRORS})
    def put(self, request: Request, handle: str) -> Response:
        do_block(request_user(request), access_user_by_handle(handle))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None, **_PERSON_ERRORS})
    def delete(self, request: Request, handle: str) -> Response:
        do_unblock(request_user(request), access_user_by_handle(handle))
        return Response(status=status.HTTP_204_NO_CONTENT)
