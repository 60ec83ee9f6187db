"""What a render worker does with one job id: claim, render, encode, store, finish."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q

from generation.actions.jobs import (
    Lease,
    LeaseLost,
    do_claim_job,
    do_fail_job_permanently,
    do_finish_render,
    do_heartbeat,
    do_release_failed_attempt,
)
from generation.backends import RenderRequest, get_backend
from generation.gate import render_input_providers
from generation.media.encode import encode_clip
from generation.models import VideoJob
from generation.storage import OUTPUT_FILES, copy_from_storage, delete_names, store_output

logger = logging.getLogger(__name__)


# Progress is written (and pushed live) at least this many points apart, besides heartbeats.
PROGRESS_STEP = 10


class PermanentRenderError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Heartbeat:
    """Progress callback that extends the lease at most every JOB_HEARTBEAT_SECONDS."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.last_beat = time.monotonic()
        self.last_progress = 0

    def __call__(self, progress: int) -> None:
        now = time.monotonic()
        is_due = now - self.last_beat >= settings.JOB_HEARTBEAT_SECONDS
        if is_due or progress - self.last_progress >= PROGRESS_STEP:
            do_heartbeat(self.lease, progress=progress)
            self.last_beat = now
            self.last_progress = progress


def _build_request(job: VideoJob, workdir: Path) -> RenderRequest:
    input_reference = None
    if job.input_reference:
        input_reference = copy_from_storage(job.input_reference.name, workdir / "reference.png")
    source_video = None
    if job.remix_source_name:
        if not default_storage.exists(job.remix_source_name):
            raise PermanentRenderError(
                "remix_source_deleted", "The video this remix starts from was deleted."
            )
        source_video = copy_from_storage(job.remix_source_name, workdir / "source.mp4")
    extra: dict[str, Any] = {}
    for provider in render_input_providers():
        extra.update(provider(job, workdir))
    return RenderRequest(
        prompt=job.prompt,
        seconds=job.seconds,
        width=job.width,
        height=job.height,
        seed=job.seed,
        input_reference=input_reference,
        source_video=source_video,
        **extra,
    )


def claim_render(job_id: str) -> Lease | None:
    """Take the job for this worker process; None (logged) when it is not queued."""
    lease = do_claim_job(job_id, worker=worker_name())
    if lease is None:
        logger.info("job %s is not queued; nothing to do", job_id)
    return lease


def render_job(job_id: str) -> None:
    lease = claim_render(job_id)
    if lease is not None:
        render_claimed_job(lease)


def render_claimed_job(lease: Lease) -> None:
    job_id = lease.job_id
    job = lease.job
    stored: list[str] = []
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=f"render-{job_id}-") as tmp:
            workdir = Path(tmp)
            request = _build_request(job, workdir)
            heartbeat = _Heartbeat(lease)
            clip = get_backend().render(request)
            media = encode_clip(clip, workdir / "out", progress=heartbeat)
            render_seconds = time.monotonic() - started
            do_heartbeat(lease, progress=99)  # still ours before touching storage
            local_files = {
                "video": media.video,
                "thumbnail": media.thumbnail,
                "spritesheet": media.spritesheet,
            }
            files = {}
            for variant in OUTPUT_FILES:
                files[variant] = store_output(job_id, variant, local_files[variant])
                stored.append(files[variant])
        if not do_finish_render(lease, files=files, render_seconds=render_seconds):
            raise LeaseLost(job_id)
        logger.info("job %s completed in %.2f s", job_id, render_seconds)
    except LeaseLost:
        logger.warning("job %s is no longer ours; dropping this attempt", job_id)
        _discard_if_not_completed(job_id, stored)
    except PermanentRenderError as error:
        do_fail_job_permanently(lease, code=error.code, message=error.message)
    except Exception as error:
        logger.exception("render of %s failed", job_id)
        do_release_failed_attempt(
            lease, code="render_failed", message=f"The render failed: {type(error).__name__}."
        )


def _discard_if_not_completed(job_id: str, stored: list[str]) -> None:
    """Delete files this attempt stored unless another attempt finished the job with them."""
    finished = Q(status=VideoJob.Status.COMPLETED) | Q(
        status=VideoJob.Status.IN_PROGRESS, stage=VideoJob.Stage.OUTPUT_CHECK
    )
    if VideoJob.objects.filter(finished, pk=job_id).exists():
        return  # the same names hold the finished render's files; keep them
    delete_names(stored)
