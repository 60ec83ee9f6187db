"""OpenAPI descriptions of the /v1 endpoints: the response objects, the error shape and the
errors each endpoint can answer, so clients can be generated and the API fuzzed."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from generation.api.serializers import ALLOWED_SECONDS, ALLOWED_SIZES, CONTENT_VARIANTS


class VideoErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class VideoObjectSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["video"])
    model = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["queued", "in_progress", "completed", "failed", "cancelled"]
    )
    progress = serializers.IntegerField(min_value=0, max_value=100)
    created_at = serializers.IntegerField(help_text="Unix seconds.")
    completed_at = serializers.IntegerField(allow_null=True)
    expires_at = serializers.IntegerField(allow_null=True)
    prompt = serializers.CharField()
    seconds = serializers.ChoiceField(choices=ALLOWED_SECONDS)
    size = serializers.ChoiceField(choices=ALLOWED_SIZES)
    remixed_from_video_id = serializers.CharField(allow_null=True)
    error = VideoErrorSerializer(allow_null=True)


class VideoListObjectSerializer(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    # A field named like Serializer.data: the metaclass takes it out of the class attributes.
    data = VideoObjectSerializer(many=True)  # type: ignore[assignment]
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class VideoDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["video.deleted"])
    deleted = serializers.BooleanField()


class OpenAIErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorDetailSerializer()


def openai_errors(*statuses: int) -> dict[int, OpenApiResponse]:
    meaning = {
        400: "Invalid request (the `param` and `code` say which field and why).",
        401: "No API key, or an unknown or revoked one.",
        403: "A tagged cameo may not be used by you (`cameo_permission_denied`).",
        404: "No such object (someone else's private one is the same 404).",
        422: "The uploaded file was read but refused (the message names the problem).",
        409: "The Idempotency-Key was used with other parameters, or the video waits for the "
             "approval of a person in it (`video_awaiting_approval`).",
        410: "The video was withdrawn (`video_withdrawn`); the message says why in general "
             "terms.",
        429: "Rate limit or daily quota reached (`Retry-After` says when to retry).",
        503: "The database is unavailable (`Retry-After` says when to retry).",
    }
    return {
        status: OpenApiResponse(OpenAIErrorSerializer, description=meaning[status])
        for status in (401, 503, *statuses)
    }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="A retried create with the same key returns the first job.",
)
VIDEO_ID = OpenApiParameter("video_id", OpenApiTypes.STR, OpenApiParameter.PATH)


def create_schema(request: Any) -> Any:
    return extend_schema(
        operation_id="videos_create", tags=["videos"], request={"multipart/form-data": request},
        parameters=[IDEMPOTENCY_KEY],
        responses={200: VideoObjectSerializer, **openai_errors(400, 403, 409, 429)},
    )


list_schema = extend_schema(
    operation_id="videos_list", tags=["videos"],
    parameters=[
        OpenApiParameter("after", OpenApiTypes.STR, description="A video id to list after."),
        OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100 (default 20)."),
        OpenApiParameter("order", OpenApiTypes.STR, enum=["asc", "desc"]),
    ],
    responses={200: VideoListObjectSerializer, **openai_errors(400)},
)
retrieve_schema = extend_schema(
    operation_id="videos_retrieve", tags=["videos"], parameters=[VIDEO_ID],
    responses={200: VideoObjectSerializer, **openai_errors(404)},
)
delete_schema = extend_schema(
    operation_id="videos_delete", tags=["videos"], parameters=[VIDEO_ID],
    responses={200: VideoDeletedSerializer, **openai_errors(404)},
)


def remix_schema(request: Any) -> Any:
    return extend_schema(
        operation_id="videos_remix", tags=["videos"], parameters=[VIDEO_ID, IDEMPOTENCY_KEY],
        request={"application/json": request, "multipart/form-data": request},
        responses={200: VideoObjectSerializer, **openai_errors(400, 403, 404, 409, 410, 429)},
    )


content_schema = extend_schema(
    operation_id="videos_content", tags=["videos"],
    parameters=[
        VIDEO_ID,
        OpenApiParameter("variant", OpenApiTypes.STR, enum=list(CONTENT_VARIANTS)),
        OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER,
                         description="A byte range, for seeking."),
    ],
    responses={
        (200, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
        (206, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="A byte range."),
        302: OpenApiResponse(description="A short-lived signed URL (S3 storage)."),
        416: OpenApiResponse(description="The byte range is not satisfiable."),
        **openai_errors(400, 404, 409, 410),
    },
)
