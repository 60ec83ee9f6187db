"""Live events about videos, to their owner's WebSocket connections (see sora_social.events)."""

from __future__ import annotations

from generation.models import VideoJob
from generation.objects import video_object
from sora_social.events import send_user_event

VIDEO_EVENT_KINDS = ("video.queued", "video.progress", "video.completed", "video.failed",
                     "video.cancelled", "video.withdrawn", "video.deleted")


def send_video_event(job: VideoJob, kind: str) -> None:
    """Send `kind` with the job's current state once the current transaction commits."""
    if kind not in VIDEO_EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    send_user_event(job.user_id, {"type": kind, "data": video_object(job)})
