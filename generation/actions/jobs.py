"""The worker side of a job: claim with a lease, heartbeat, finish or fail, and the reaper.

Every transition is a conditional UPDATE on the job row, so running any step twice, or from a
worker whose lease has expired, changes nothing.
"""

from __future__ import annotations

import datetime
import functools
import logging
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generation.actions.quota import refund_generation_quota
from generation.dispatch import (
    jobs_with_outstanding_messages,
    notify_job_queued,
    send_render_message,
)
from generation.events import send_video_event
from generation.models import VideoJob
from generation.output_gate import has_output_checks
from generation.storage import delete_job_files_after_commit
from sora_social.redis import broker_redis_client

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The job is no longer ours: deleted, cancelled, finished, or re-leased after expiry."""


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: uuid.UUID
    # The job as it was when claimed: what to render, without reading the row again.
    job: VideoJob


def _lease_until(now: datetime.datetime) -> datetime.datetime:
    return now + datetime.timedelta(seconds=settings.JOB_LEASE_SECONDS)


def do_claim_job(job_id: str, *, worker: str) -> Lease | None:
    """Take a queued job for this worker; None when it is not (or no longer) queued."""
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        claimed = VideoJob.objects.filter(pk=job_id, status=VideoJob.Status.QUEUED).update(
            status=VideoJob.Status.IN_PROGRESS,
            lease_token=token,
            lease_until=_lease_until(now),
            heartbeat_at=now,
            started_at=now,
            worker=worker[:200],
            attempts=F("attempts") + 1,
            progress=0,
        )
        if not claimed:
            return None
        job = VideoJob.objects.get(pk=job_id)
        send_video_event(job, "video.progress")
    return Lease(job_id=job_id, token=token, job=job)


def do_heartbeat(lease: Lease, *, progress: int) -> None:
    """Extend the lease and record progress; raise LeaseLost if the job is no longer ours."""
    now = timezone.now()
    with transaction.atomic():
        updated = VideoJob.objects.filter(
            pk=lease.job_id, status=VideoJob.Status.IN_PROGRESS, lease_token=lease.token
        ).update(
            progress=min(max(progress, 0), 99),
            heartbeat_at=now,
            lease_until=_lease_until(now),
        )
        if not updated:
            raise LeaseLost(lease.job_id)
        send_video_event(VideoJob.objects.get(pk=lease.job_id), "video.progress")


def do_finish_render(lease: Lease, *, files: dict[str, str], render_seconds: float) -> bool:
    """The render is stored: hand the job to the output gate (or, with no output checks
    configured, complete it). False if the lease was lost meanwhile."""
    now = timezone.now()
    is_checked = has_output_checks()
    if is_checked:
        # No check worker holds it yet; if no one claims it by then (a lost message), the
        # reaper sends the check again.
        outcome = {"stage": VideoJob.Stage.OUTPUT_CHECK, "progress": 99, "lease_token": None,
                   "lease_until": now + datetime.timedelta(seconds=settings.JOB_LEASE_SECONDS)}
    else:
        outcome = {"status": VideoJob.Status.COMPLETED, "progress": 100, "completed_at": now,
                   "lease_until": None}
    with transaction.atomic():
        updated = VideoJob.objects.filter(
            pk=lease.job_id, status=VideoJob.Status.IN_PROGRESS, lease_token=lease.token,
            stage=VideoJob.Stage.RENDER,
        ).update(
            heartbeat_at=now,
            render_seconds=render_seconds,
            video=files["video"],
            thumbnail=files["thumbnail"],
            spritesheet=files["spritesheet"],
            **outcome,
        )
        if not updated:
            return False
        if is_checked:
            transaction.on_commit(functools.partial(send_output_check_message, lease.job_id))
        else:
            send_video_event(VideoJob.objects.get(pk=lease.job_id), "video.completed")
    return True


def send_output_check_message(job_id: str) -> None:
    """Ask a CPU worker to check the job's output. Never raises: a lost message is sent again
    by the reaper once the job's check lease runs out."""
    from generation.tasks import check_output_task

    try:
        check_output_task.delay(job_id)
    except Exception as error:  # noqa: BLE001 (the broker's failures are many; all mean "later")
        logger.warning("could not send the output check of %s (the reaper will): %s",
                       job_id, error)


def end_locked(
    job: VideoJob, *, status: VideoJob.Status, code: str, message: str, event: str
) -> None:
    """Fail or cancel an active job: refunded, its files (outputs and input) deleted after
    commit. Caller holds the row lock and has checked the job is active; a worker still on it
    loses its lease and drops its work at its next step."""
    job.status = status
    job.error_code = code
    job.error_message = message
    job.lease_token = None
    job.lease_until = None
    job.completed_at = timezone.now()
    job.is_quota_refunded = True
    job.save(
        update_fields=[
            "status", "error_code", "error_message", "lease_token", "lease_until",
            "completed_at", "is_quota_refunded",
        ]
    )
    refund_generation_quota(job.user_id, job.quota_day)
    # An attempt that died after storing some of its files leaves them under the job's fixed
    # names; an ended job keeps none, nor its input (a blocked one may show someone's face).
    delete_job_files_after_commit(job)
    send_video_event(job, event)


def fail_locked(job: VideoJob, *, code: str, message: str) -> None:
    """Caller holds the row lock and has checked the job is active."""
    end_locked(job, status=VideoJob.Status.FAILED, code=code, message=message,
               event="video.failed")


def _requeue_locked(job: VideoJob) -> None:
    """Caller holds the row lock and has checked the job is active."""
    job.status = VideoJob.Status.QUEUED
    job.lease_token = None
    job.lease_until = None
    job.progress = 0
    job.dispatched_at = timezone.now()
    job.save(update_fields=["status", "lease_token", "lease_until", "progress", "dispatched_at"])
    send_video_event(job, "video.progress")
    # The dispatchers hear of it when this transaction commits; `dispatched_at` above starts
    # the reaper's grace period.
    notify_job_queued(job.id)


def _lock_leased_job(lease: Lease) -> VideoJob | None:
    """The job row, locked, if this lease still holds it. Caller is inside a transaction."""
    return (
        VideoJob.objects.select_for_update()
        .filter(pk=lease.job_id, status=VideoJob.Status.IN_PROGRESS, lease_token=lease.token)
        .first()
    )


def do_release_failed_attempt(lease: Lease, *, code: str, message: str) -> None:
    """An attempt raised: retry while attempts remain, else fail the job (refunding quota)."""
    with transaction.atomic():
        job = _lock_leased_job(lease)
        if job is None:
            return
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            fail_locked(job, code=code, message=message)
        else:
            _requeue_locked(job)


def do_fail_job_permanently(lease: Lease, *, code: str, message: str) -> None:
    """A failure no retry can fix (e.g. the remix source was deleted)."""
    with transaction.atomic():
        job = _lock_leased_job(lease)
        if job is not None:
            fail_locked(job, code=code, message=message)


@dataclass(frozen=True)
class ReapReport:
    requeued: int
    failed: int
    redispatched: int
    # Queued jobs past the grace period whose markers this pass looked up.
    checked: int = 0
    # Output checks whose worker died or whose message was lost, sent again.
    checks_resent: int = 0


REDISPATCH_CURSOR_KEY = "dispatch:reaper-cursor"


def do_reap_jobs(*, batch_size: int = 100, redispatch_page_size: int = 500) -> ReapReport:
    """Recover jobs whose worker died (lease expired), then jobs whose message was lost."""
    from generation.actions.output import recover_stalled_output_checks

    requeued, failed = _recover_expired_leases(batch_size=batch_size)
    checks_resent, checks_failed = recover_stalled_output_checks(batch_size=batch_size)
    checked, redispatched = _redispatch_lost_messages(page_size=redispatch_page_size)
    return ReapReport(
        requeued=requeued, failed=failed + checks_failed, redispatched=redispatched,
        checked=checked, checks_resent=checks_resent,
    )


def _recover_expired_leases(*, batch_size: int) -> tuple[int, int]:
    """Re-queue (or, after the last attempt, fail) jobs whose lease expired: (requeued, failed).

    Rows are locked with SKIP LOCKED so two reapers (or a reaper and a finishing worker) never
    act on the same job twice. Needs only the database: it works while the broker is down (the
    re-queued job's message then waits for the broker, see below).
    """
    now = timezone.now()
    requeued = failed = 0
    with transaction.atomic():
        expired = (
            VideoJob.objects.select_for_update(skip_locked=True)
            .filter(status=VideoJob.Status.IN_PROGRESS, stage=VideoJob.Stage.RENDER,
                    lease_until__lt=now)
            .order_by("pk")[:batch_size]
        )
        for job in expired:
            if job.attempts >= settings.JOB_MAX_ATTEMPTS:
                fail_locked(
                    job,
                    code="worker_lost",
                    message=(
                        f"The render stopped responding {job.attempts} times "
                        f"(last on {job.worker or 'an unknown worker'}); giving up."
                    ),
                )
                failed += 1
            else:
                logger.warning("lease of %s expired on %s; re-queueing", job.id, job.worker)
                _requeue_locked(job)
                requeued += 1
    return requeued, failed


def _redispatch_lost_messages(*, page_size: int) -> tuple[int, int]:
    """Send a render message for each queued job that has none outstanding: (checked, sent).

    Only jobs whose last send is older than JOB_DISPATCH_GRACE_SECONDS count (their marker is
    written just after the send). Each pass looks at one page of them, in primary-key order
    from where the previous pass stopped, wrapping around at the end, so the work per pass is
    bounded however long the backlog. With the broker's Redis down the pass sends nothing.
    """
    now = timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.JOB_DISPATCH_GRACE_SECONDS)
    candidates = VideoJob.objects.filter(
        status=VideoJob.Status.QUEUED, dispatched_at__lt=cutoff
    ).order_by("pk")
    try:
        client = broker_redis_client()
        stored_cursor = client.get(REDISPATCH_CURSOR_KEY)
        cursor = stored_cursor.decode() if isinstance(stored_cursor, bytes) else ""
        page = list(candidates.filter(pk__gt=cursor).values_list("pk", flat=True)[:page_size])
        if len(page) < page_size and cursor:
            wrapped = candidates.filter(pk__lte=cursor).values_list("pk", flat=True)
            page += list(wrapped[: page_size - len(page)])
        outstanding = jobs_with_outstanding_messages(page)
        client.set(REDISPATCH_CURSOR_KEY, page[-1] if len(page) == page_size else "")
    except redis.RedisError as error:
        logger.warning("re-dispatch skipped this pass, the broker's Redis is unavailable: %s",
                       error)
        return 0, 0

    lost = [job_id for job_id in page if job_id not in outstanding]
    if not lost:
        return len(page), 0
    with transaction.atomic():
        # Locked and checked again: a job claimed, or sent by someone else, since the look-up
        # is no longer a candidate.
        jobs = list(
            candidates.select_for_update(skip_locked=True)
            .filter(pk__in=lost)
            .values_list("pk", flat=True)
        )
        VideoJob.objects.filter(pk__in=jobs).update(dispatched_at=now)
        for job_id in jobs:
            # Sent from here, not through the dispatchers: this sweep is what catches the
            # notifications they missed.
            transaction.on_commit(functools.partial(send_render_message, job_id))
    logger.warning("%d queued jobs had no render message outstanding; sent them one", len(jobs))
    return len(page), len(jobs)
