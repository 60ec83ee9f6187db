"""Who may see a video: one function, and its queryset twin, used by every path that reaches
a video (`/v1` retrieve, list and download, remix, web pages, later the feed and its caches).

- A withdrawn video shows nothing to anyone; its author still sees that it was withdrawn, and
  why, in general terms.
- Until a video is completed its author sees its state and no one else sees anything.
- A completed video may be watched by its author unless it is held (`VideoHold`: waiting for a
  person's decision), and by whoever a grant in `settings.VIDEO_VIEWER_GRANTS` admits (a person
  who appears in it may watch it, held or not, to decide about it; the feed will admit the
  audience of a published post). Generation knows nothing of why a grant admits someone.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from rest_framework.exceptions import NotFound

from generation.errors import InvalidRequest, VideoAwaitingApproval, VideoWithdrawn
from generation.gate import load_paths
from generation.models import VideoHold, VideoJob

if TYPE_CHECKING:
    from sora_social.accounts.models import User


class VideoAccess(IntEnum):
    NONE = 0
    METADATA = 1  # its state: what /v1 retrieve shows its author
    WATCH = 2  # its content: the video, thumbnail and spritesheet


class ViewerGrant(Protocol):
    """Admits viewers other than the author to completed, not withdrawn videos."""

    def may_watch(self, viewer: User, job: VideoJob) -> bool: ...

    def watchable(self, viewer: User) -> Q:
        """The same rule as a filter on VideoJob."""


def viewer_grants() -> tuple[ViewerGrant, ...]:
    return tuple(grant() for grant in load_paths(tuple(settings.VIDEO_VIEWER_GRANTS)))


def is_held(job: VideoJob) -> bool:
    return VideoHold.objects.filter(video=job).exists()


def video_access(viewer: User, job: VideoJob) -> VideoAccess:
    """What `viewer` may see of `job`. The one rule; `watchable_videos` is its twin."""
    is_author = viewer.is_authenticated and viewer.pk == job.user_id
    if job.is_withdrawn or job.status != VideoJob.Status.COMPLETED:
        return VideoAccess.METADATA if is_author else VideoAccess.NONE
    if is_author and not is_held(job):
        return VideoAccess.WATCH
    if viewer.is_authenticated and any(grant.may_watch(viewer, job) for grant in viewer_grants()):
        return VideoAccess.WATCH
    return VideoAccess.METADATA if is_author else VideoAccess.NONE


def watchable_videos(viewer: User) -> QuerySet[VideoJob]:
    """Every video `viewer` may watch (`video_access(...) == WATCH`), as one query."""
    if not viewer.is_authenticated:
        return VideoJob.objects.none()
    unheld = ~Exists(VideoHold.objects.filter(video=OuterRef("pk")))
    admitted: Q = Q(user=viewer) & Q(unheld)
    for grant in viewer_grants():
        admitted |= grant.watchable(viewer)
    return VideoJob.objects.filter(
        admitted, status=VideoJob.Status.COMPLETED, withdrawn_at__isnull=True
    )


def access_video_state(viewer: User, video_id: str) -> VideoJob:
    """A video whose state (`/v1` retrieve) `viewer` may read; anything else is NotFound."""
    job = VideoJob.objects.filter(pk=video_id).first()
    if job is None or video_access(viewer, job) is VideoAccess.NONE:
        raise NotFound(f"No video found with id '{video_id}'.")
    return job


def access_video_content(viewer: User, video_id: str) -> VideoJob:
    """A video `viewer` may watch. Its author learns why they may not (withdrawn, not ready,
    held for a decision); anyone else gets the same NotFound as for a video that never was."""
    job = VideoJob.objects.filter(pk=video_id).first()
    if job is None:
        raise NotFound(f"No video found with id '{video_id}'.")
    return check_watchable(viewer, job)


def check_watchable(viewer: User, job: VideoJob) -> VideoJob:
    """`job` if `viewer` may watch it, else the refusal `access_video_content` describes."""
    access = video_access(viewer, job)
    if access is VideoAccess.WATCH:
        return job
    if access is VideoAccess.NONE:
        raise NotFound(f"No video found with id '{job.pk}'.")
    if job.is_withdrawn:
        raise VideoWithdrawn(
            f"Video '{job.pk}' was withdrawn: {job.withdrawal_message}", param="video_id"
        )
    if job.status != VideoJob.Status.COMPLETED:
        raise InvalidRequest(
            f"Video '{job.pk}' is {job.status}; its content is available once completed.",
            param="video_id",
            code="video_not_ready",
        )
    raise VideoAwaitingApproval(
        f"Video '{job.pk}' shows someone who asked to approve each video of them first; "
        "it can be downloaded once they approve it.",
        param="video_id",
    )
