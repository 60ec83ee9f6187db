"""The output gate on the real database and a real stored render: the check stage's lease,
its outcomes (completed, blocked and refunded, held), failing closed, and the reaper."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from generation.actions.jobs import do_claim_job, do_finish_render, do_reap_jobs
from generation.actions.output import (
    CHECK_FAILED_CODE,
    do_claim_output_check,
    do_finish_output_check,
    place_hold,
)
from generation.actions.requests import GenerationRequest, check_and_request_generation
from generation.checking import check_job_output
from generation.models import DailyGenerationUsage, VideoHold, VideoJob
from generation.output_gate import Outcome, OutputVerdict
from generation.rendering import render_job
from generation.storage import output_name
from tests.conftest import Member
from tests.generation import output_checks

FILES = {"video": "v.mp4", "thumbnail": "t.webp", "spritesheet": "s.jpg"}
CHECKS = "tests.generation.output_checks."


def _job(member: Member, *, seconds: int = 4) -> VideoJob:
    job, _ = check_and_request_generation(
        member.user,
        GenerationRequest(prompt="a red kite over a beach", model="sora-2", seconds=seconds,
                          width=720, height=1280),
    )
    return job


def _stored(member: Member) -> VideoJob:
    """A job rendered by the reference backend and stored, waiting for its output check."""
    job = _job(member)
    render_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.stage, job.progress) == ("in_progress", "output_check", 99)
    return job


def _waiting(member: Member) -> VideoJob:
    """A job whose (pretend) render is stored, without rendering."""
    job = _job(member)
    lease = do_claim_job(job.pk, worker="gpu")
    assert lease is not None
    assert do_finish_render(lease, files=FILES, render_seconds=1.0)
    job.refresh_from_db()
    return job


def _expire(job: VideoJob) -> None:
    VideoJob.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )


def test_a_stored_render_is_checked_on_its_sampled_frames_and_completes(
    alice: Member, settings: Any
) -> None:
    settings.OUTPUT_CHECKS = [CHECKS + "remember_frames"]
    job = _stored(alice)
    output_checks.SEEN.clear()

    assert check_job_output(job.pk) == "completed"

    job.refresh_from_db()
    assert (job.status, job.progress, job.check_attempts) == ("completed", 100, 1)
    assert output_checks.SEEN[0][0] == job.pk
    assert 8 <= output_checks.SEEN[0][1] <= 20  # 4 s at 2 frames a second, plus cuts
    assert check_job_output(job.pk) is None  # a second message changes nothing
    assert len(output_checks.SEEN) == 1


def test_a_blocked_video_fails_with_the_checks_code_is_refunded_and_keeps_no_file(
    alice: Member, settings: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.OUTPUT_CHECKS = [CHECKS + "block_everything"]
    job = _stored(alice)
    assert default_storage.exists(output_name(job.pk, "video"))

    with django_capture_on_commit_callbacks(execute=True):
        assert check_job_output(job.pk) == "failed"

    job.refresh_from_db()
    assert (job.status, job.error_code, job.is_quota_refunded) == (
        "failed", "test_blocked", True)
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 0
    for variant in ("video", "thumbnail", "spritesheet"):
        assert not default_storage.exists(output_name(job.pk, variant))


def test_a_check_that_raises_is_retried_then_fails_the_job_closed(
    alice: Member, settings: Any
) -> None:
    settings.OUTPUT_CHECKS = [CHECKS + "explode"]
    job = _stored(alice)

    for _attempt in range(settings.JOB_MAX_ATTEMPTS):
        _expire(job)  # the retry waits for its lease, as a re-sent message would
        assert check_job_output(job.pk) is None

    job.refresh_from_db()
    assert (job.status, job.error_code, job.check_attempts) == (
        "failed", CHECK_FAILED_CODE, settings.JOB_MAX_ATTEMPTS)
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 0


def test_only_one_worker_checks_a_job_and_a_stale_check_cannot_finish_it(alice: Member) -> None:
    job = _waiting(alice)

    first = do_claim_output_check(job.pk)
    assert first is not None
    assert do_claim_output_check(job.pk) is None  # its lease is live
    _expire(job)
    second = do_claim_output_check(job.pk)  # the first worker died, say
    assert second is not None

    assert do_finish_output_check(first, [OutputVerdict(Outcome.PASS)]) is None
    assert do_finish_output_check(second, [OutputVerdict(Outcome.PASS)]) == "completed"


def test_the_reaper_sends_a_stalled_check_again_then_gives_up(
    alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    job = _waiting(alice)  # its check message was lost: nobody claims it
    _expire(job)

    with django_capture_on_commit_callbacks() as callbacks:
        report = do_reap_jobs()

    assert (report.checks_resent, report.requeued, report.failed) == (1, 0, 0)
    assert len(callbacks) == 1  # the check message, after commit
    job.refresh_from_db()
    assert (job.status, job.stage) == ("in_progress", "output_check")  # not rendered again

    for _attempt in range(settings.JOB_MAX_ATTEMPTS):
        assert do_claim_output_check(job.pk) is not None
        _expire(job)  # the worker died each time
        do_reap_jobs()
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", CHECK_FAILED_CODE)


def test_a_held_verdict_completes_the_job_under_a_hold_written_by_its_record(
    alice: Member
) -> None:
    job = _waiting(alice)
    lease = do_claim_output_check(job.pk)
    assert lease is not None

    def hold(job: VideoJob, is_blocked: bool) -> None:
        place_hold(job, kind="test", reference="1")

    status = do_finish_output_check(lease, [OutputVerdict(Outcome.PASS),
                                            OutputVerdict(Outcome.HOLD, record=hold)])

    assert status == "completed"
    assert list(VideoHold.objects.filter(video=job).values_list("kind", "reference")) == [
        ("test", "1")]


@pytest.mark.parametrize("outcome", [Outcome.PASS, Outcome.BLOCK])
def test_every_record_runs_once_and_knows_whether_the_video_was_blocked(
    alice: Member, outcome: Outcome
) -> None:
    job = _waiting(alice)
    lease = do_claim_output_check(job.pk)
    assert lease is not None
    calls: list[bool] = []

    do_finish_output_check(lease, [
        OutputVerdict(Outcome.PASS, record=lambda job, is_blocked: calls.append(is_blocked)),
        OutputVerdict(outcome, code="x", message="y"),
    ])

    assert calls == [outcome is Outcome.BLOCK]
