"""A cameo's consent audit log as a file its owner keeps: GET /api/cameos/{id}/audit-log."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Generator

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from cameos.actions.owner import access_own_cameo
from cameos.audit import audit_csv, audit_json
from generation.api.views import AlwaysJSONNegotiation
from sora_social.accounts.authentication import request_user
from sora_social.api_schema import api_errors

CONTENT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
# Pieces (a CSV line, a JSON event) sent per hop to the sync thread.
PIECES_PER_SEND = 200
_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")


class AuditLogQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=tuple(CONTENT_TYPES),
        default="json",
        error_messages={"invalid_choice": '"{input}" is not an export format: use json or csv.'},
    )


class AuditCameoSerializer(serializers.Serializer):
    id = serializers.CharField()
    handle = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    verified_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class AuditEventSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    event = serializers.CharField(help_text="The event's kind; new kinds are added over time.")
    author = serializers.CharField(help_text="Who acted: a handle, or empty for the service.")
    video_id = serializers.CharField()
    reason = serializers.CharField()
    details = serializers.DictField()


class AuditLogSerializer(serializers.Serializer):
    """The shape of the JSON export (described here; cameos.audit writes it)."""

    cameo = AuditCameoSerializer()
    exported_at = serializers.DateTimeField()
    events = AuditEventSerializer(many=True)


async def _sent_in_batches(pieces: Generator[str, None, None]) -> AsyncIterator[str]:
    """`pieces`, pulled a batch at a time on the sync thread, where the database cursor lives.

    The server is ASGI (sora_social.serve), where Django reads a sync iterator whole into a list
    before sending a byte: the very thing streaming is for.
    """
    take = sync_to_async(lambda: list(itertools.islice(pieces, PIECES_PER_SEND)))
    try:
        while batch := await take():
            yield "".join(batch)
    finally:
        # A client that leaves mid-way: release the cursor now, not when collected.
        await sync_to_async(pieces.close)()


class CameoAuditLogView(APIView):
    """Every use and attempted use of the cameo, and every change to it, oldest first."""

    # `format` names the file to export, not a renderer; errors are JSON.
    content_negotiation_class = AlwaysJSONNegotiation

    @extend_schema(
        description="Every use and attempted use of the cameo, and every change to it, oldest "
        "first, as a file to download. `format=csv`: a header line (time, event, author, "
        "video_id, reason, details), then one line per event, details as compact JSON; a cell "
        "that would start with = + - @, a tab or a carriage return starts with ' instead, so "
        "a spreadsheet shows it as text.",
        parameters=[AuditLogQuerySerializer],
        responses={
            (200, "application/json"): AuditLogSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            **api_errors(400, 404),
        },
    )
    def get(self, request: Request, cameo_id: str) -> StreamingHttpResponse:
        query = AuditLogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        export_format = query.validated_data["format"]
        cameo = access_own_cameo(request_user(request), cameo_id)
        if export_format == "csv":
            pieces = audit_csv(cameo)
        else:
            pieces = audit_json(cameo, exported_at=timezone.now())
        response = StreamingHttpResponse(
            _sent_in_batches(pieces), content_type=CONTENT_TYPES[export_format]
        )
        handle = _UNSAFE_FILENAME_CHARACTERS.sub("_", cameo.handle)
        response["Content-Disposition"] = (
            f'attachment; filename="cameo-{handle}-audit.{export_format}"'
        )
        response["Cache-Control"] = "private, no-store"
        return response
