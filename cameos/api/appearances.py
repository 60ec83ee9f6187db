"""Where I appear (/api/appearances) and revocation (/api/cameos/{id}/revoke, /receipt)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cameos.actions.appearances import (
    AppearanceStatus,
    access_appearance,
    appearance_status,
    appearances_of,
    do_approve_appearance,
    do_decline_appearance,
    do_remove_appearance,
    with_status,
)
from cameos.actions.owner import access_own_cameo
from cameos.actions.revocation import do_revoke_cameo
from cameos.models import Appearance, DeletionReceipt
from sora_social.accounts.authentication import request_user
from sora_social.api_schema import api_errors


class AppearanceSerializer(serializers.ModelSerializer):
    video_id = serializers.CharField()
    cameo = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    prompt = serializers.CharField(source="video.prompt")
    video_created_at = serializers.DateTimeField(source="video.created_at")
    video_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Appearance
        fields = (
            "id", "video_id", "cameo", "author", "status", "source", "consent_decision",
            "owner_decision", "is_uncertain", "first_seen_seconds", "prompt",
            "video_created_at", "created_at", "decided_at", "video_url", "thumbnail_url",
        )

    def get_cameo(self, appearance: Appearance) -> dict[str, str]:
        return {"id": appearance.cameo_id, "handle": appearance.cameo.handle,
                "kind": appearance.cameo.kind}

    def get_author(self, appearance: Appearance) -> dict[str, str]:
        author = appearance.video.user
        return {"handle": author.handle, "display_name": author.display_name}

    def get_status(self, appearance: Appearance) -> str:
        return str(appearance_status(appearance))

    def _content_url(self, appearance: Appearance, variant: str) -> str | None:
        if appearance_status(appearance) not in (AppearanceStatus.DRAFT,
                                                 AppearanceStatus.AWAITING_APPROVAL):
            return None
        url = reverse("v1-video-content", args=[appearance.video_id])
        return url if variant == "video" else f"{url}?variant={variant}"

    def get_video_url(self, appearance: Appearance) -> str | None:
        return self._content_url(appearance, "video")

    def get_thumbnail_url(self, appearance: Appearance) -> str | None:
        return self._content_url(appearance, "thumbnail")


class WithdrawalSerializer(serializers.Serializer):
    withdrawn = serializers.ListField(child=serializers.CharField(),
                                      help_text="Videos withdrawn (this one and its remixes).")
    cancelled = serializers.ListField(child=serializers.CharField(),
                                      help_text="Remixes still being made, cancelled.")


class DeletionReceiptSerializer(serializers.ModelSerializer):
    cameo_id = serializers.CharField()
    is_complete = serializers.SerializerMethodField()

    class Meta:
        model = DeletionReceipt
        fields = ("cameo_id", "requested_at", "biometrics_erased_at", "completed_at",
                  "is_complete", "erased", "videos_withdrawn", "jobs_cancelled")

    def get_is_complete(self, receipt: DeletionReceipt) -> bool:
        return receipt.completed_at is not None


STATUS_FILTER = OpenApiParameter(
    "status", str, enum=[str(value) for value in AppearanceStatus],
    description="Only appearances in this state.",
)


class AppearanceListView(APIView):
    """Every video with one of my cameos in it, other people's drafts included, newest first."""

    @extend_schema(parameters=[STATUS_FILTER],
                   responses={200: AppearanceSerializer(many=True), **api_errors(400)})
    def get(self, request: Request) -> Response:
        appearances = appearances_of(request_user(request))
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in AppearanceStatus.__members__.values():
                raise serializers.ValidationError(
                    {"status": f"Must be one of {', '.join(AppearanceStatus)}."})
            appearances = with_status(appearances, AppearanceStatus(wanted))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(appearances, request, view=self)
        return paginator.get_paginated_response(AppearanceSerializer(page, many=True).data)


class AppearanceDetailView(APIView):
    @extend_schema(responses={200: AppearanceSerializer, **api_errors(404)})
    def get(self, request: Request, appearance_id: str) -> Response:
        appearance = access_appearance(request_user(request), appearance_id)
        return Response(AppearanceSerializer(appearance).data)


class AppearanceApproveView(APIView):
    @extend_schema(request=None, responses={200: AppearanceSerializer, **api_errors(404, 409)})
    def post(self, request: Request, appearance_id: str) -> Response:
        user = request_user(request)
        do_approve_appearance(user, appearance_id)
        return Response(AppearanceSerializer(access_appearance(user, appearance_id)).data)


class AppearanceDeclineView(APIView):
    @extend_schema(request=None, responses={200: WithdrawalSerializer, **api_errors(404, 409)})
    def post(self, request: Request, appearance_id: str) -> Response:
        report = do_decline_appearance(request_user(request), appearance_id)
        return Response({"withdrawn": report.withdrawn, "cancelled": report.cancelled})


class AppearanceRemoveView(APIView):
    """Remove the video for everyone: it is withdrawn, and so are its remixes."""

    @extend_schema(request=None, responses={200: WithdrawalSerializer, **api_errors(404)})
    def post(self, request: Request, appearance_id: str) -> Response:
        report = do_remove_appearance(request_user(request), appearance_id)
        return Response({"withdrawn": report.withdrawn, "cancelled": report.cancelled})


class CameoRevokeView(APIView):
    """Revoke the cameo: its face data is erased now; renders in flight are cancelled and
    every video with it withdrawn in the background (the receipt completes then)."""

    @extend_schema(request=None, responses={202: DeletionReceiptSerializer, **api_errors(404)})
    def post(self, request: Request, cameo_id: str) -> Response:
        receipt = do_revoke_cameo(request_user(request), cameo_id)
        return Response(DeletionReceiptSerializer(receipt).data, status=status.HTTP_202_ACCEPTED)


class CameoReceiptView(APIView):
    @extend_schema(responses={200: DeletionReceiptSerializer, **api_errors(404)})
    def get(self, request: Request, cameo_id: str) -> Response:
        cameo = access_own_cameo(request_user(request), cameo_id)
        receipt = DeletionReceipt.objects.filter(cameo=cameo).first()
        if receipt is None:
            raise NotFound(f"Cameo '{cameo_id}' has not been revoked; it has no receipt.")
        return Response(DeletionReceiptSerializer(receipt).data)
