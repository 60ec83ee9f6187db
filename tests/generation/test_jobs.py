"""Job lifecycle rules on the real database: leases, idempotent finishing, the reaper, refunds."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generation.actions.jobs import (
    LeaseLost,
    do_claim_job,
    do_finish_render,
    do_heartbeat,
    do_reap_jobs,
    do_release_failed_attempt,
)
from generation.actions.requests import GenerationRequest, check_and_request_generation
from generation.dispatch import notify_channel
from generation.errors import Conflict
from generation.models import DailyGenerationUsage, VideoJob
from generation.rendering import render_job
from generation.storage import output_name
from tests.conftest import Member

FILES = {"video": "v.mp4", "thumbnail": "t.webp", "spritesheet": "s.jpg"}


def _job(member: Member) -> VideoJob:
    job, created = check_and_request_generation(
        member.user,
        GenerationRequest(prompt="a clip", model="sora-2", seconds=4, width=720, height=1280),
    )
    assert created
    return job


def _expire_lease(job: VideoJob) -> None:
    VideoJob.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )


def test_only_one_worker_claims_a_job(alice: Member) -> None:
    job = _job(alice)

    first = do_claim_job(job.pk, worker="one")
    second = do_claim_job(job.pk, worker="two")

    assert first is not None
    assert second is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.worker) == ("in_progress", 1, "one")


def test_finishing_twice_changes_nothing(alice: Member) -> None:
    job = _job(alice)
    lease = do_claim_job(job.pk, worker="one")
    assert lease is not None

    assert do_finish_render(lease, files=FILES, render_seconds=1.5) is True
    assert do_finish_render(lease, files={**FILES, "video": "other.mp4"}, render_seconds=9) is False

    job.refresh_from_db()
    # Stored, and waiting for the output gate (tests/generation/test_output_gate.py).
    assert (job.status, job.stage, job.progress, job.video.name, job.render_seconds) == (
        "in_progress", "output_check", 99, "v.mp4", 1.5
    )


def test_the_reaper_requeues_a_job_whose_worker_died_and_the_old_lease_is_dead(
    alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    job = _job(alice)
    stale_lease = do_claim_job(job.pk, worker="killed")
    assert stale_lease is not None
    _expire_lease(job)

    with django_capture_on_commit_callbacks() as callbacks, CaptureQueriesContext(
        connection
    ) as queries:
        report = do_reap_jobs()

    assert (report.requeued, report.failed, report.redispatched) == (1, 0, 0)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_token) == ("queued", 1, None)
    assert len(callbacks) == 1  # the live event
    # The dispatchers are told, in the same transaction, to send its render message.
    assert [query["sql"] for query in queries if "pg_notify" in query["sql"]] == [
        f"SELECT pg_notify('{notify_channel()}', '{job.pk}')"
    ]
    with pytest.raises(LeaseLost):
        do_heartbeat(stale_lease, progress=50)
    assert do_finish_render(stale_lease, files=FILES, render_seconds=1) is False


def test_the_reaper_gives_up_after_the_last_attempt_and_refunds_the_quota(alice: Member) -> None:
    job = _job(alice)
    for _attempt in range(settings.JOB_MAX_ATTEMPTS):
        assert do_claim_job(job.pk, worker="crashy") is not None
        _expire_lease(job)
        do_reap_jobs()

    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == (
        "failed", "worker_lost", settings.JOB_MAX_ATTEMPTS
    )
    assert "giving up" in job.error_message
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 0
    assert do_reap_jobs().failed == 0  # already failed: nothing more to do


def test_a_job_that_fails_keeps_none_of_the_files_its_dead_attempts_stored(
    alice: Member, django_capture_on_commit_callbacks: Any
) -> None:
    job = _job(alice)
    for attempt in range(settings.JOB_MAX_ATTEMPTS):
        assert do_claim_job(job.pk, worker="crashy") is not None
        if attempt == settings.JOB_MAX_ATTEMPTS - 1:
            # The last attempt stored its video, then its worker died before finishing.
            default_storage.save(output_name(job.pk, "video"), ContentFile(b"partial"))
        _expire_lease(job)
        with django_capture_on_commit_callbacks(execute=True):
            do_reap_jobs()

    job.refresh_from_db()
    assert job.status == "failed"
    assert not default_storage.exists(output_name(job.pk, "video"))


def test_the_reaper_redispatches_a_queued_job_whose_message_was_lost(
    alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    job = _job(alice)
    fresh = _job(alice)
    VideoJob.objects.filter(pk=job.pk).update(
        dispatched_at=timezone.now()
        - datetime.timedelta(seconds=settings.JOB_DISPATCH_GRACE_SECONDS + 1)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        report = do_reap_jobs()

    assert report.redispatched == 1
    assert len(callbacks) == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.dispatched_at > fresh.created_at
    assert fresh.status == job.status == "queued"


def test_a_failed_attempt_is_retried_then_fails_and_refunds_once(alice: Member) -> None:
    job = _job(alice)
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 1

    for _attempt in range(settings.JOB_MAX_ATTEMPTS):
        lease = do_claim_job(job.pk, worker="buggy")
        assert lease is not None
        do_release_failed_attempt(lease, code="render_failed", message="boom")
        do_release_failed_attempt(lease, code="render_failed", message="boom")  # a repeat: no-op

    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts, job.is_quota_refunded) == (
        "failed", "render_failed", settings.JOB_MAX_ATTEMPTS, True
    )
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 0


def test_a_remix_whose_source_was_deleted_fails_clearly_and_refunds(alice: Member) -> None:
    source = _job(alice)
    VideoJob.objects.filter(pk=source.pk).update(
        status=VideoJob.Status.COMPLETED, video=f"videos/{source.pk}/video.mp4"
    )
    source.refresh_from_db()
    remix, _ = check_and_request_generation(
        alice.user,
        GenerationRequest(
            prompt="again", model="sora-2", seconds=4, width=720, height=1280, remixed_from=source
        ),
    )

    render_job(remix.pk)  # the source's file is not in storage

    remix.refresh_from_db()
    assert (remix.status, remix.error_code, remix.attempts) == ("failed", "remix_source_deleted", 1)
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 1  # the source's charge only


def test_an_idempotency_key_reused_with_other_parameters_is_a_conflict(alice: Member) -> None:
    request = GenerationRequest(prompt="one", model="sora-2", seconds=4, width=720, height=1280)
    first, created = check_and_request_generation(alice.user, request, idempotency_key="k-1")
    assert created

    with pytest.raises(Conflict) as refused:
        check_and_request_generation(
            alice.user,
            GenerationRequest(prompt="two", model="sora-2", seconds=4, width=720, height=1280),
            idempotency_key="k-1",
        )

    assert refused.value.code == "idempotency_key_reused"
    assert list(VideoJob.objects.values_list("pk", flat=True)) == [first.pk]
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 1
