"""The output check stage of a job: claim with a lease, keep it, finish with the verdicts.

A job reaches this stage in_progress at 99 with its files stored (`do_finish_render`). Like the
render, every transition is a conditional UPDATE on the row, so a step run twice, or by a worker
whose lease has expired, changes nothing; the reaper sends the check again when a worker dies
or its message is lost, and fails the job after JOB_MAX_ATTEMPTS checks that never finished.
"""

from __future__ import annotations

import datetime
import functools
import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from generation.actions.jobs import Lease, fail_locked, send_output_check_message
from generation.events import send_video_event
from generation.models import VideoHold, VideoJob
from generation.output_gate import OutputVerdict, first_block

logger = logging.getLogger(__name__)

CHECK_FAILED_CODE = "output_check_failed"


def _lease_until(now: datetime.datetime) -> datetime.datetime:
    # One lease for the whole pass (no heartbeat): a check of a short video takes seconds, and
    # a worker that dies is noticed when this runs out.
    return now + datetime.timedelta(seconds=settings.OUTPUT_CHECK_LEASE_SECONDS)


def _in_check_stage() -> Q:
    return Q(status=VideoJob.Status.IN_PROGRESS, stage=VideoJob.Stage.OUTPUT_CHECK)


def do_claim_output_check(job_id: str) -> Lease | None:
    """Take the job's output check; None when it is not waiting for one (done, cancelled,
    deleted, or held by a live check worker)."""
    now = timezone.now()
    token = uuid.uuid4()
    claimed = (
        VideoJob.objects.filter(_in_check_stage(), pk=job_id)
        .filter(Q(lease_token__isnull=True) | Q(lease_until__lt=now))
        .update(
            lease_token=token,
            lease_until=_lease_until(now),
            heartbeat_at=now,
            check_attempts=F("check_attempts") + 1,
        )
    )
    if not claimed:
        return None
    return Lease(job_id=job_id, token=token, job=VideoJob.objects.get(pk=job_id))


def _lock_checked_job(lease: Lease) -> VideoJob | None:
    return (
        VideoJob.objects.select_for_update()
        .filter(_in_check_stage(), pk=lease.job_id, lease_token=lease.token)
        .first()
    )


def do_finish_output_check(lease: Lease, verdicts: list[OutputVerdict]) -> str | None:
    """Complete the job, or fail it if a check blocked it; every verdict's `record` runs in
    the same transaction. Returns the job's new status, or None if the lease was lost."""
    with transaction.atomic():
        job = _lock_checked_job(lease)
        if job is None:
            return None
        block = first_block(verdicts)
        if block is not None:
            fail_locked(job, code=block.code, message=block.message)
        else:
            now = timezone.now()
            job.status = VideoJob.Status.COMPLETED
            job.progress = 100
            job.completed_at = now
            job.heartbeat_at = now
            job.lease_token = None
            job.lease_until = None
            job.save(update_fields=["status", "progress", "completed_at", "heartbeat_at",
                                    "lease_token", "lease_until"])
        for verdict in verdicts:
            verdict.record(job, block is not None)
        if block is None:
            send_video_event(job, "video.completed")
        return job.status


def _resend_or_fail_locked(job: VideoJob, now: datetime.datetime, *, failure: str) -> bool:
    """Send the check again while attempts remain (True); after the last, fail the job closed
    with `failure` (refunded, files deleted): a video is never completed unchecked. Caller
    holds the row lock of a job in the check stage."""
    if job.check_attempts >= settings.JOB_MAX_ATTEMPTS:
        fail_locked(job, code=CHECK_FAILED_CODE, message=failure)
        return False
    job.lease_token = None
    job.lease_until = _lease_until(now)
    job.save(update_fields=["lease_token", "lease_until"])
    transaction.on_commit(functools.partial(send_output_check_message, job.id))
    return True


def do_release_failed_check(lease: Lease, *, error: str) -> None:
    """A check pass raised: send it again, or fail the job after the last attempt."""
    with transaction.atomic():
        job = _lock_checked_job(lease)
        if job is None:
            return
        _resend_or_fail_locked(
            job, timezone.now(),
            failure=f"The video could not be checked ({error}); it was not kept.",
        )


def recover_stalled_output_checks(*, batch_size: int) -> tuple[int, int]:
    """Checks whose worker died or whose message was lost: send again, or, after the last
    attempt, fail the job. Returns (resent, failed)."""
    now = timezone.now()
    resent = failed = 0
    with transaction.atomic():
        stalled = (
            VideoJob.objects.select_for_update(skip_locked=True)
            .filter(_in_check_stage(), lease_until__lt=now)
            .order_by("pk")[:batch_size]
        )
        for job in stalled:
            if _resend_or_fail_locked(
                job, now, failure=f"Checking the video stopped responding {job.check_attempts} "
                                  "times; it was not kept.",
            ):
                resent += 1
            else:
                failed += 1
    if resent:
        logger.warning("sent %d stalled output checks again", resent)
    return resent, failed


def place_hold(job: VideoJob, *, kind: str, reference: str) -> None:
    """Hold a video until `release_hold` with the same kind and reference. Idempotent."""
    VideoHold.objects.get_or_create(video=job, kind=kind, reference=reference)


def release_hold(job: VideoJob, *, kind: str, reference: str) -> bool:
    """Release one hold; True if the video has no hold left."""
    VideoHold.objects.filter(video=job, kind=kind, reference=reference).delete()
    return not VideoHold.objects.filter(video=job).exists()
