"""A signed-in user's own notifications (/api/notifications...), newest first."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sora_social.accounts.authentication import request_user
from sora_social.api_schema import api_errors
from sora_social.notifications.actions import access_notification, do_mark_read, unread_count
from sora_social.notifications.api.serializers import (
    MarkReadResultSerializer,
    MarkReadSerializer,
    NotificationListQuerySerializer,
    NotificationPageSerializer,
    NotificationSerializer,
)
from sora_social.notifications.models import Notification


class NotificationListView(APIView):
    @extend_schema(
        operation_id="api_notifications_list",
        parameters=[NotificationListQuerySerializer],
        responses={200: NotificationPageSerializer, **api_errors(400)},
    )
    def get(self, request: Request) -> Response:
        query = NotificationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit: int = query.validated_data["limit"]
        user = request_user(request)
        notifications = Notification.objects.filter(recipient=user)
        if query.validated_data["unread"]:
            notifications = notifications.filter(read_at__isnull=True)
        if "after" in query.validated_data:
            notifications = notifications.filter(pk__lt=query.validated_data["after"])
        page = list(notifications.order_by("-id")[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        body: dict[str, Any] = {
            "data": page,
            "first_id": page[0].pk if page else None,
            "last_id": page[-1].pk if page else None,
            "has_more": has_more,
            "unread_count": unread_count(user),
        }
        return Response(NotificationPageSerializer(body).data)


class NotificationReadView(APIView):
    """Mark some of your notifications read ({"ids": [...]}) or all of them ({"all": true})."""

    @extend_schema(
        request=MarkReadSerializer,
        responses={200: MarkReadResultSerializer, **api_errors(400)},
    )
    def post(self, request: Request) -> Response:
        serializer = MarkReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request_user(request)
        ids: list[int] | Literal["all"] = serializer.validated_data.get("ids", "all")
        marked = do_mark_read(user, ids)
        return Response(
            MarkReadResultSerializer({"marked": marked, "unread_count": unread_count(user)}).data
        )


class NotificationDetailView(APIView):
    @extend_schema(responses={200: NotificationSerializer, **api_errors(404)})
    def get(self, request: Request, notification_id: int) -> Response:
        notification = access_notification(request_user(request), notification_id)
        return Response(NotificationSerializer(notification).data)
