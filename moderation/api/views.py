"""Reporting a video (/api/videos/{id}/reports) and the reporter's own reports (/api/reports)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from moderation.actions import do_report_video, reports_by
from moderation.api.serializers import ReportSerializer, ReportVideoSerializer
from moderation.models import Report
from sora_social.accounts.authentication import request_user
from sora_social.api_schema import api_errors


class VideoReportView(APIView):
    @extend_schema(
        operation_id="api_videos_reports_create",
        request=ReportVideoSerializer,
        responses={201: ReportSerializer, **api_errors(400, 404)},
        description="Report a video you can see. Reporting it again while your report is "
        "open updates that report (same id, answered 201 like the first time).",
    )
    def post(self, request: Request, video_id: str) -> Response:
        serializer = ReportVideoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = do_report_video(request_user(request), video_id, **serializer.validated_data)
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


class ReportListView(ListAPIView):
    """My own reports, newest first. A generic list view so the schema shows the page shape
    and its limit and offset parameters."""

    serializer_class = ReportSerializer
    pagination_class = LimitOffsetPagination

    def get_queryset(self) -> QuerySet[Report]:
        return reports_by(request_user(self.request))

    @extend_schema(responses={200: ReportSerializer(many=True), **api_errors()})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
