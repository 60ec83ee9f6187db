"""The OpenAI-compatible Videos API under /v1."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.http import HttpResponseBase, HttpResponseRedirect
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.actions.requests import (
    GenerationRequest,
    check_and_request_generation,
    check_remix_source,
    do_delete_video,
)
from generation.api.errors import openai_exception_handler
from generation.api.ranges import ranged_file_response
from generation.api.schema import (
    content_schema,
    create_schema,
    delete_schema,
    list_schema,
    remix_schema,
    retrieve_schema,
)
from generation.api.serializers import (
    VideoContentSerializer,
    VideoCreateSerializer,
    VideoListSerializer,
    VideoRemixSerializer,
)
from generation.errors import InvalidRequest
from generation.inputs import check_input_reference
from generation.models import VideoJob
from generation.objects import video_object
from generation.ratelimit import check_create_rate_limit
from generation.storage import content_type
from generation.visibility import access_video_content, access_video_state
from sora_social.accounts.authentication import request_user
from sora_social.accounts.models import ApiKey

IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"
POLL_AFTER_MS_QUEUED = 1000
POLL_AFTER_MS_RUNNING = 500


class AlwaysJSONNegotiation(BaseContentNegotiation):
    """The SDK asks for `Accept: application/binary` on downloads; errors still go out as JSON."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


class OpenAIView(APIView):
    content_negotiation_class = AlwaysJSONNegotiation

    def get_exception_handler(self) -> Any:
        return openai_exception_handler


def _rate_limit_credential(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.pk}"
    return f"user:{request.user.pk}"


def _idempotency_key(request: Request) -> str | None:
    key = request.META.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > 200:
        raise InvalidRequest(
            "Idempotency-Key must be at most 200 characters.", param="Idempotency-Key"
        )
    return key or None


class VideoCollectionView(OpenAIView):
    parser_classes = (MultiPartParser, FormParser, JSONParser)

    @create_schema(VideoCreateSerializer)
    def post(self, request: Request) -> Response:
        check_create_rate_limit(_rate_limit_credential(request))
        serializer = VideoCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        reference = data.get("input_reference")
        width, height = (int(part) for part in data["size"].split("x"))
        generation = GenerationRequest(
            prompt=data["prompt"],
            model=data["model"],
            seconds=int(data["seconds"]),
            width=width,
            height=height,
            input_reference_png=check_input_reference(reference) if reference else None,
        )
        job, _created = check_and_request_generation(
            request_user(request),
            generation,
            idempotency_key=_idempotency_key(request),
        )
        return Response(video_object(job))

    @list_schema
    def get(self, request: Request) -> Response:
        serializer = VideoListSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        limit: int = serializer.validated_data["limit"]
        descending = serializer.validated_data["order"] == "desc"
        jobs = VideoJob.objects.filter(user=request_user(request))
        after_id = serializer.validated_data.get("after")
        if after_id:
            cursor = VideoJob.objects.filter(user=request_user(request), pk=after_id).first()
            if cursor is None:
                raise InvalidRequest(f"No video found with id '{after_id}'.", param="after")
            if descending:
                jobs = jobs.filter(
                    Q(created_at__lt=cursor.created_at)
                    | Q(created_at=cursor.created_at, pk__lt=cursor.pk)
                )
            else:
                jobs = jobs.filter(
                    Q(created_at__gt=cursor.created_at)
                    | Q(created_at=cursor.created_at, pk__gt=cursor.pk)
                )
        ordering = ("-created_at", "-id") if descending else ("created_at", "id")
        page = list(jobs.order_by(*ordering)[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        return Response(
            {
                "object": "list",
                "data": [video_object(job) for job in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": has_more,
            }
        )


class VideoDetailView(OpenAIView):
    @retrieve_schema
    def get(self, request: Request, video_id: str) -> Response:
        job = access_video_state(request_user(request), video_id)
        headers = {}
        if job.status == VideoJob.Status.QUEUED:
            headers["openai-poll-after-ms"] = str(POLL_AFTER_MS_QUEUED)
        elif job.status == VideoJob.Status.IN_PROGRESS:
            headers["openai-poll-after-ms"] = str(POLL_AFTER_MS_RUNNING)
        return Response(video_object(job), headers=headers)

    @delete_schema
    def delete(self, request: Request, video_id: str) -> Response:
        do_delete_video(request_user(request), video_id)
        return Response({"id": video_id, "object": "video.deleted", "deleted": True})


class VideoRemixView(OpenAIView):
    parser_classes = (JSONParser, MultiPartParser, FormParser)

    @remix_schema(VideoRemixSerializer)
    def post(self, request: Request, video_id: str) -> Response:
        check_create_rate_limit(_rate_limit_credential(request))
        serializer = VideoRemixSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        source = check_remix_source(request_user(request), video_id)
        generation = GenerationRequest(
            prompt=serializer.validated_data["prompt"],
            model=source.model,
            seconds=source.seconds,
            width=source.width,
            height=source.height,
            remixed_from=source,
        )
        job, _created = check_and_request_generation(
            request_user(request),
            generation,
            idempotency_key=_idempotency_key(request),
        )
        return Response(video_object(job))


class VideoContentView(OpenAIView):
    @content_schema
    def get(self, request: Request, video_id: str) -> HttpResponseBase:
        serializer = VideoContentSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        variant = serializer.validated_data["variant"]
        job = access_video_content(request_user(request), video_id)
        name = getattr(job, variant).name
        if settings.S3_BUCKET:
            # A short-lived signed URL: the bucket itself stays private.
            return HttpResponseRedirect(default_storage.url(name))
        response = ranged_file_response(
            default_storage.open(name, "rb"),
            size=default_storage.size(name),
            content_type=content_type(variant),
            range_header=request.headers.get("Range"),
        )
        response["Cache-Control"] = "private, max-age=0"
        return response
