"""Taking videos back: cancelling renders in flight and withdrawing finished videos.

Both are asked for from above (a cameo owner's removal or revocation, later a moderator) with a
reason code and a message in general terms for the author, who is notified. Withdrawal reaches
down the remix lineage: a remix shows what its source showed, so remixes descending from a
withdrawn video are withdrawn too, and those still rendering are cancelled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from generation.actions.jobs import end_locked
from generation.events import send_video_event
from generation.models import VideoHold, VideoJob
from generation.storage import delete_job_files_after_commit
from sora_social.notifications.actions import do_notify

ACTIVE = (VideoJob.Status.QUEUED, VideoJob.Status.IN_PROGRESS)
SOURCE_WITHDRAWN = "source_withdrawn"
SOURCE_WITHDRAWN_MESSAGE = "The video this remix starts from was removed, so the remix was too."


@dataclass
class WithdrawalReport:
    withdrawn: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


class _AuthorNotices:
    """One notification per author and reason for everything one call ended, written in its
    transaction: an author who loses 200 videos to one revocation gets one message, not 200."""

    TITLES = {
        "video.cancelled": ("Your video was cancelled", "{count} of your videos were cancelled"),
        "video.withdrawn": ("Your video was removed", "{count} of your videos were removed"),
    }

    def __init__(self) -> None:
        self.videos: dict[tuple[int, str, str, str], list[str]] = defaultdict(list)

    def add(self, job: VideoJob, *, kind: str, code: str, message: str) -> None:
        self.videos[(job.user_id, kind, code, message)].append(job.id)

    def send(self) -> None:
        for (user_id, kind, code, message), video_ids in self.videos.items():
            one, many = self.TITLES[kind]
            title = one if len(video_ids) == 1 else many.format(count=len(video_ids))
            do_notify(user_id, kind=kind, title=title, body=message,
                      data={"video_ids": video_ids, "code": code})


def _cancel_locked(job: VideoJob, *, code: str, message: str, notices: _AuthorNotices) -> None:
    """Caller holds the row lock and has checked the job is active."""
    end_locked(job, status=VideoJob.Status.CANCELLED, code=code, message=message,
               event="video.cancelled")
    notices.add(job, kind="video.cancelled", code=code, message=message)


def _withdraw_locked(
    withdrawals: list[tuple[VideoJob, str, str]], *, notices: _AuthorNotices
) -> None:
    """Withdraw each (job, code, message). Caller holds the row locks and has checked each job
    is completed and not withdrawn. One statement per reason, not a few per video: a revocation
    batch of hundreds of videos is a handful of queries."""
    if not withdrawals:
        return
    now = timezone.now()
    by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
    for job, code, message in withdrawals:
        job.withdrawn_at = now
        job.withdrawal_reason = code
        job.withdrawal_message = message[:300]
        by_reason[(code, job.withdrawal_message)].append(job.pk)
    for (code, message), ids in by_reason.items():
        VideoJob.objects.filter(pk__in=ids).update(
            withdrawn_at=now, withdrawal_reason=code, withdrawal_message=message
        )
    jobs = [job for job, _code, _message in withdrawals]
    VideoHold.objects.filter(video__in=jobs).delete()
    # The person in it asked for it gone: no copy is kept to be served by any path.
    delete_job_files_after_commit(*jobs)
    for job, code, message in withdrawals:
        send_video_event(job, "video.withdrawn")
        notices.add(job, kind="video.withdrawn", code=code, message=message)


def remix_descendants(job_ids: Iterable[str]) -> set[str]:
    """Every remix descending from these videos (not the videos themselves)."""
    seen = set(job_ids)
    descendants: set[str] = set()
    frontier = set(seen)
    while frontier:
        children = set(
            VideoJob.objects.filter(remixed_from__in=frontier).values_list("pk", flat=True)
        ) - seen
        seen |= children
        descendants |= children
        frontier = children
    return descendants


def do_cancel_jobs(job_ids: Iterable[str], *, code: str, message: str) -> list[str]:
    """Cancel those of these jobs still queued or in progress (quota refunded, files deleted,
    authors told); returns the ids cancelled. Running it twice cancels nothing more."""
    cancelled = []
    notices = _AuthorNotices()
    with transaction.atomic():
        jobs = VideoJob.objects.select_for_update().filter(pk__in=list(job_ids), status__in=ACTIVE)
        for job in jobs.order_by("pk"):
            _cancel_locked(job, code=code, message=message, notices=notices)
            cancelled.append(job.id)
        notices.send()
    return cancelled


def do_withdraw_videos(job_ids: Iterable[str], *, code: str, message: str) -> WithdrawalReport:
    """Withdraw these videos and every remix descending from them; cancel those still being
    made. Idempotent: a video already withdrawn (or failed, or cancelled) is left as it is."""
    direct = set(job_ids)
    descendants = remix_descendants(direct)
    report = WithdrawalReport()
    notices = _AuthorNotices()
    withdrawals: list[tuple[VideoJob, str, str]] = []
    with transaction.atomic():
        jobs = VideoJob.objects.select_for_update().filter(pk__in=direct | descendants)
        for job in jobs.order_by("pk"):
            is_direct = job.id in direct
            job_code = code if is_direct else SOURCE_WITHDRAWN
            job_message = message if is_direct else SOURCE_WITHDRAWN_MESSAGE
            if job.status in ACTIVE:
                _cancel_locked(job, code=job_code, message=job_message, notices=notices)
                report.cancelled.append(job.id)
            elif job.status == VideoJob.Status.COMPLETED and not job.is_withdrawn:
                withdrawals.append((job, job_code, job_message))
                report.withdrawn.append(job.id)
        _withdraw_locked(withdrawals, notices=notices)
        notices.send()
    return report
