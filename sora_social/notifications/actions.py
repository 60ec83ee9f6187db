"""Writes for notifications. Every app tells people things through `do_notify`."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any, Literal

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from sora_social.accounts.models import User
from sora_social.events import send_user_event
from sora_social.notifications.models import (
    KIND_MAX_LENGTH,
    KIND_PATTERN,
    TITLE_MAX_LENGTH,
    Notification,
)

CREATED_EVENT = "notification.created"
# Ids are PostgreSQL bigints; a larger number names nothing (and must not reach a query).
MAX_NOTIFICATION_ID = 2**63 - 1

_KIND = re.compile(KIND_PATTERN)


def check_notification_kind(kind: str) -> str:
    if len(kind) > KIND_MAX_LENGTH or not _KIND.fullmatch(kind):
        raise ValueError(
            f"notification kind {kind!r} must be at most {KIND_MAX_LENGTH} lowercase letters "
            "and digits, in words joined by '.', '_' or '-'"
        )
    return kind


def _plain_json(data: dict[str, Any]) -> dict[str, Any]:
    """`data` as plain JSON (UUIDs, datetimes as strings), the same in the row and the event."""
    try:
        plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    except TypeError as error:
        raise ValueError(f"notification data must be JSON: {error}") from None
    if not isinstance(plain, dict):
        raise ValueError("notification data must be an object")
    return plain


def notification_object(notification: Notification) -> dict[str, Any]:
    """A notification as the API shows it and as its live event carries it."""
    timestamp = serializers.DateTimeField()
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": timestamp.to_representation(notification.created_at),
        "read_at": (
            timestamp.to_representation(notification.read_at) if notification.read_at else None
        ),
    }


def do_notify(
    recipient_id: int,
    *,
    kind: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
) -> Notification:
    """Write a notification in the caller's transaction; its live event leaves after commit.

    A rolled-back caller leaves neither the row nor the event. `kind` is the sender's slug
    ("appearance.new"); a malformed kind, an empty or over-long title, or data that is not a
    JSON object is a programming error (ValueError), raised before anything is written.
    """
    check_notification_kind(kind)
    if not title.strip() or len(title) > TITLE_MAX_LENGTH:
        raise ValueError(f"notification title must be 1-{TITLE_MAX_LENGTH} characters")
    notification = Notification.objects.create(
        recipient_id=recipient_id,
        kind=kind,
        title=title,
        body=body,
        data=_plain_json(data or {}),
    )
    send_user_event(
        recipient_id, {"type": CREATED_EVENT, "data": notification_object(notification)}
    )
    return notification


def access_notification(user: User, notification_id: int) -> Notification:
    """Fetch one of the user's own notifications; anyone else's is NotFound, like a missing one."""
    notification = None
    if 0 < notification_id <= MAX_NOTIFICATION_ID:
        notification = Notification.objects.filter(recipient=user, pk=notification_id).first()
    if notification is None:
        raise NotFound(f"No notification found with id '{notification_id}'.")
    return notification


def unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def do_mark_read(user: User, ids: Collection[int] | Literal["all"]) -> int:
    """Mark the user's unread notifications among `ids` (or all of them) read; return how many.

    Ids of other people's notifications, of missing ones and of ones already read change
    nothing and are not counted. One UPDATE, so two concurrent calls never both count a row.
    """
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids != "all":
        unread = unread.filter(pk__in=[pk for pk in ids if 0 < pk <= MAX_NOTIFICATION_ID])
    return unread.update(read_at=timezone.now())
