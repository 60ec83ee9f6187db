"""Live events to a user's WebSocket connections (one Channels group per user).

A push is only a hint that something changed; the REST API stays the truth. Events are sent
after the transaction that caused them commits, never before.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from generation.api.serializers import video_object
from generation.models import VideoJob

logger = logging.getLogger(__name__)

VIDEO_EVENT_KINDS = ("video.queued", "video.progress", "video.completed", "video.failed",
                     "video.deleted")


def user_group_name(user_id: int) -> str:
    return f"user.{user_id}"


def _send_rollback_unsafe(user_id: int, event: dict[str, Any]) -> None:
    channel_layer = get_channel_layer()
    if channel_layer is None:
        return
    try:
        async_to_sync(channel_layer.group_send)(
            user_group_name(user_id), {"type": "user.event", "event": event}
        )
    except Exception:
        # A lost hint must never fail the job that produced it.
        logger.exception("could not send %s to user %s", event.get("type"), user_id)


def send_video_event(job: VideoJob, kind: str) -> None:
    """Send `kind` with the job's current state once the current transaction commits."""
    if kind not in VIDEO_EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    event = {"type": kind, "data": video_object(job)}
    user_id = job.user_id
    transaction.on_commit(lambda: _send_rollback_unsafe(user_id, event))
