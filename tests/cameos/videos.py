"""Videos for cameo tests, made through the real request, render and output check paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from generation.actions.jobs import do_claim_job, do_finish_render
from generation.actions.output import do_claim_output_check, do_finish_output_check
from generation.actions.requests import GenerationRequest, check_and_request_generation
from generation.checking import check_job_output
from generation.models import VideoJob
from generation.output_gate import Outcome, OutputVerdict
from generation.rendering import render_job
from generation.storage import OUTPUT_FILES, store_output
from tests.conftest import Member

MakeVideo = Callable[..., VideoJob]


def request_video(
    member: Member, prompt: str, *, photo: bytes | None = None, remix_of: VideoJob | None = None
) -> VideoJob:
    job, _ = check_and_request_generation(
        member.user,
        GenerationRequest(prompt=prompt, model="sora-2", seconds=4, width=720, height=1280,
                          input_reference_png=photo, remixed_from=remix_of),
    )
    return job


def rendered_and_checked(job: VideoJob, capture: Callable[..., Any]) -> VideoJob:
    """Render and check `job` in this process, as the workers would, running what each step
    does after its commit (file deletions, live events)."""
    render_job(job.pk)
    with capture(execute=True):
        check_job_output(job.pk)
    job.refresh_from_db()
    return job


def passed_without_rendering(job: VideoJob, folder: Path) -> VideoJob:
    """`job` taken through the real state machine with small stand-in files and a passing
    output gate: for tests about what happens to a finished video, not how it is made."""
    lease = do_claim_job(job.pk, worker="tests")
    assert lease is not None
    files = {}
    for variant in OUTPUT_FILES:
        local = folder / f"{job.pk}-{variant}"
        local.write_bytes(f"{variant} of {job.pk}".encode())
        files[variant] = store_output(job.pk, variant, local)
    assert do_finish_render(lease, files=files, render_seconds=0.1)
    check = do_claim_output_check(job.pk)
    assert check is not None
    assert do_finish_output_check(check, [OutputVerdict(Outcome.PASS)]) == "completed"
    job.refresh_from_db()
    return job
