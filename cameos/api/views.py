"""Cameos over REST (/api/cameos...) for the mobile app and the web, and characters over /v1."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cameos.actions.characters import access_character, do_create_character
from cameos.actions.owner import (
    access_own_cameo,
    cameo_access_list,
    cameo_events,
    do_decide_access,
    do_update_cameo_settings,
)
from cameos.actions.registration import do_start_registration, do_submit_recording
from cameos.api.serializers import (
    AccessDecisionSerializer,
    CameoAccessSerializer,
    CameoEventSerializer,
    CameoSerializer,
    CameoSettingsSerializer,
    ChallengeSerializer,
    CharacterCreateSerializer,
    LivenessCheckSerializer,
    RecordingUploadSerializer,
    RegistrationResponseSerializer,
    RegistrationSerializer,
    character_object,
)
from cameos.consent import consent_notice
from cameos.models import Cameo, LivenessCheck
from generation.api.schema import openai_errors
from generation.api.views import OpenAIView
from sora_social.accounts.actions import access_user_by_handle
from sora_social.accounts.authentication import request_user
from sora_social.api_schema import api_errors

CLIENT_HEADER = "X-Client"


def _client(request: Request) -> str:
    """Who recorded a consent: the app's own header, else the browser's user agent."""
    client = request.headers.get(CLIENT_HEADER) or request.headers.get("User-Agent") or "unknown"
    return client[:300]


class ConsentNoticeView(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(responses={200: OpenApiResponse(description="The current consent notice.")})
    def get(self, request: Request) -> Response:
        return Response(consent_notice())


class RegistrationView(APIView):
    @extend_schema(
        request=RegistrationSerializer,
        responses={201: RegistrationResponseSerializer, **api_errors(400, 409)},
    )
    def post(self, request: Request) -> Response:
        serializer = RegistrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        challenge = do_start_registration(
            request_user(request),
            notice_version=serializer.validated_data["notice_version"],
            client=_client(request),
        )
        return Response(
            {"cameo": CameoSerializer(challenge.cameo).data,
             "challenge": ChallengeSerializer(challenge).data},
            status=status.HTTP_201_CREATED,
        )


class RecordingView(APIView):
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(
        request={"multipart/form-data": RecordingUploadSerializer},
        responses={202: LivenessCheckSerializer, **api_errors(400, 404, 409, 422)},
    )
    def post(self, request: Request, challenge_id: str) -> Response:
        serializer = RecordingUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        check = do_submit_recording(
            request_user(request),
            challenge_id,
            serializer.validated_data["video"],
            is_mirrored=serializer.validated_data["mirrored"],
        )
        return Response(LivenessCheckSerializer(check).data, status=status.HTTP_202_ACCEPTED)


class LivenessCheckView(APIView):
    @extend_schema(responses={200: LivenessCheckSerializer, **api_errors(404)})
    def get(self, request: Request, check_id: str) -> Response:
        try:
            key = uuid.UUID(check_id)
        except ValueError:
            raise NotFound(f"No check found with id '{check_id}'.") from None
        check = (
            LivenessCheck.objects.select_related("cameo")
            .filter(pk=key, cameo__owner=request_user(request))
            .first()
        )
        if check is None:
            raise NotFound(f"No check found with id '{check_id}'.")
        return Response(LivenessCheckSerializer(check).data)


class CameoListView(APIView):
    @extend_schema(responses={200: CameoSerializer(many=True), **api_errors()})
    def get(self, request: Request) -> Response:
        cameos = Cameo.objects.filter(owner=request_user(request)).order_by("-created_at")
        return Response(CameoSerializer(cameos, many=True).data)


class CameoDetailView(APIView):
    @extend_schema(responses={200: CameoSerializer, **api_errors(404)})
    def get(self, request: Request, cameo_id: str) -> Response:
        return Response(CameoSerializer(access_own_cameo(request_user(request), cameo_id)).data)

    @extend_schema(
        request=CameoSettingsSerializer, responses={200: CameoSerializer, **api_errors(400, 404)}
    )
    def patch(self, request: Request, cameo_id: str) -> Response:
        serializer = CameoSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cameo = do_update_cameo_settings(
            request_user(request), cameo_id, **serializer.validated_data
        )
        return Response(CameoSerializer(cameo).data)


class CameoEventsView(APIView):
    """Every use and attempted use of the cameo, and every change to it, newest first."""

    @extend_schema(responses={200: CameoEventSerializer(many=True), **api_errors(404)})
    def get(self, request: Request, cameo_id: str) -> Response:
        cameo = access_own_cameo(request_user(request), cameo_id)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(cameo_events(cameo), request, view=self)
        return paginator.get_paginated_response(CameoEventSerializer(page, many=True).data)


class CameoAccessListView(APIView):
    @extend_schema(responses={200: CameoAccessSerializer(many=True), **api_errors(404)})
    def get(self, request: Request, cameo_id: str) -> Response:
        cameo = access_own_cameo(request_user(request), cameo_id)
        return Response(CameoAccessSerializer(cameo_access_list(cameo), many=True).data)


class CameoAccessView(APIView):
    @extend_schema(
        request=AccessDecisionSerializer, responses={204: None, **api_errors(400, 404)}
    )
    def put(self, request: Request, cameo_id: str, handle: str) -> Response:
        serializer = AccessDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        do_decide_access(
            request_user(request),
            cameo_id,
            access_user_by_handle(handle),
            serializer.validated_data["decision"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None, **api_errors(404)})
    def delete(self, request: Request, cameo_id: str, handle: str) -> Response:
        do_decide_access(request_user(request), cameo_id, access_user_by_handle(handle), None)
        return Response(status=status.HTTP_204_NO_CONTENT)


CHARACTER_RESPONSE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["character"]},
        "created_at": {"type": "integer"},
        "name": {"type": "string"},
        "handle": {"type": "string"},
        "status": {"type": "string"},
    },
    "required": ["id", "object", "created_at", "name", "handle", "status"],
}


class CharacterCollectionView(OpenAIView):
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(
        operation_id="createCharacter",
        request={"multipart/form-data": CharacterCreateSerializer},
        responses={200: CHARACTER_RESPONSE, **openai_errors(400, 422)},
    )
    def post(self, request: Request) -> Response:
        serializer = CharacterCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cameo = do_create_character(
            request_user(request),
            name=serializer.validated_data["name"],
            upload=serializer.validated_data["video"],
        )
        return Response(character_object(cameo))


class CharacterDetailView(OpenAIView):
    @extend_schema(
        operation_id="getCharacter", responses={200: CHARACTER_RESPONSE, **openai_errors(404)}
    )
    def get(self, request: Request, character_id: str) -> Response:
        return Response(character_object(access_character(request_user(request), character_id)))


