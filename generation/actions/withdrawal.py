"""Taking videos back: cancelling renders in flight and withdrawing finished videos.

Both are asked for from above (a cameo owner's removal or revocation, later a moderator) with a
reason code and a message in general terms for the author, who is notified. Withdrawal reaches
down the remix lineage: a remix shows what its source showed, so remixes descending from a
withdrawn video are withdrawn too, and those still rendering are cancelled.
"""

from __future__ import annotations

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


def _cancel_locked(job: VideoJob, *, code: str, message: str) -> None:
    """Caller holds the row lock and has checked the job is active."""
    end_locked(job, status=VideoJob.Status.CANCELLED, code=code, message=message,
               event="video.cancelled")
    do_notify(job.user_id, kind="video.cancelled", title="Your video was cancelled",
              body=message, data={"video_id": job.id, "code": code})


def _withdraw_locked(job: VideoJob, *, code: str, message: str) -> None:
    """Caller holds the row lock and has checked the job is completed and not withdrawn."""
    job.withdrawn_at = timezone.now()
    job.withdrawal_reason = code
    job.withdrawal_message = message[:300]
    job.save(update_fields=["withdrawn_at", "withdrawal_reason", "withdrawal_message"])
    VideoHold.objects.filter(video=job).delete()
    # The person in it asked for it gone: no copy is kept to be served by any path.
    delete_job_files_after_commit(job)
    send_video_event(job, "video.withdrawn")
    do_notify(job.user_id, kind="video.withdrawn", title="Your video was removed",
              body=message, data={"video_id": job.id, "code": code})


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
    with transaction.atomic():
        jobs = VideoJob.objects.select_for_update().filter(pk__in=list(job_ids), status__in=ACTIVE)
        for job in jobs.order_by("pk"):
            _cancel_locked(job, code=code, message=message)
            cancelled.append(job.id)
    return cancelled


def do_withdraw_videos(job_ids: Iterable[str], *, code: str, message: str) -> WithdrawalReport:
    """Withdraw these videos and every remix descending from them; cancel those still being
    made. Idempotent: a video already withdrawn (or failed, or cancelled) is left as it is."""
    direct = set(job_ids)
    descendants = remix_descendants(direct)
    report = WithdrawalReport()
    with transaction.atomic():
        jobs = VideoJob.objects.select_for_update().filter(pk__in=direct | descendants)
        for job in jobs.order_by("pk"):
            is_direct = job.id in direct
            job_code = code if is_direct else SOURCE_WITHDRAWN
            job_message = message if is_direct else SOURCE_WITHDRAWN_MESSAGE
            if job.status in ACTIVE:
                _cancel_locked(job, code=job_code, message=job_message)
                report.cancelled.append(job.id)
            elif job.status == VideoJob.Status.COMPLETED and not job.is_withdrawn:
                _withdraw_locked(job, code=job_code, message=job_message)
                report.withdrawn.append(job.id)
    return report
