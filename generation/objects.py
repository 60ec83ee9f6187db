"""The job as the OpenAI Videos API's `video` object: what /v1, live events and pages show."""

from __future__ import annotations

import datetime
from typing import Any

from generation.models import VideoJob

WITHDRAWN_CODE = "video_withdrawn"


def _unix(moment: datetime.datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def video_object(job: VideoJob) -> dict[str, Any]:
    """The job as the OpenAI Videos API's `video` object."""
    error = None
    status = job.status
    if job.status == VideoJob.Status.FAILED or job.status == VideoJob.Status.CANCELLED:
        error = {"code": job.error_code, "message": job.error_message}
    if job.is_withdrawn:
        # The Videos API has no such status: a withdrawn video reads as a failure that says
        # why, so clients polling for a terminal state stop, and nothing offers its content.
        status = VideoJob.Status.FAILED
        error = {"code": WITHDRAWN_CODE, "message": job.withdrawal_message}
    return {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": status,
        "progress": job.progress,
        "created_at": _unix(job.created_at),
        "completed_at": _unix(job.completed_at),
        "expires_at": None,
        "prompt": job.prompt,
        "seconds": str(job.seconds),
        "size": job.size,
        "remixed_from_video_id": job.remixed_from_id,
        "error": error,
    }
