"""The request side: a user asks for, remixes, reads or deletes videos."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from rest_framework.exceptions import NotFound

from generation.actions.quota import charge_quota_and_enqueue, quota_today
from generation.errors import Conflict, InvalidRequest
from generation.events import send_video_event
from generation.gate import run_request_gate
from generation.models import VideoJob, new_video_id
from generation.storage import delete_job_files_after_commit, input_reference_name
from generation.visibility import check_watchable
from sora_social.accounts.models import User


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    model: str
    seconds: int
    width: int
    height: int
    input_reference_png: bytes | None = None
    remixed_from: VideoJob | None = None

    def fingerprint(self) -> str:
        description = {
            "prompt": self.prompt,
            "model": self.model,
            "seconds": self.seconds,
            "size": [self.width, self.height],
            "input_reference": hashlib.sha256(self.input_reference_png).hexdigest()
            if self.input_reference_png
            else None,
            "remixed_from": self.remixed_from.id if self.remixed_from else None,
        }
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def access_video(user: User, video_id: str, *, for_update: bool = False) -> VideoJob:
    """Fetch one of the user's own videos. Anyone else's, or none, is the same NotFound."""
    queryset = VideoJob.objects.filter(user=user, pk=video_id)
    if for_update:
        queryset = queryset.select_for_update()
    job = queryset.first()
    if job is None:
        raise NotFound(f"No video found with id '{video_id}'.")
    return job


def check_remix_source(user: User, video_id: str) -> VideoJob:
    """A video the user may remix: their own, and one they may watch (completed, not held,
    not withdrawn)."""
    source = access_video(user, video_id)
    if source.status != VideoJob.Status.COMPLETED:
        raise InvalidRequest(
            f"Video '{video_id}' is {source.status}; only a completed video can be remixed.",
            param="video_id",
            code="video_not_ready",
        )
    return check_watchable(user, source)


def _existing_for_idempotency_key(
    user: User, idempotency_key: str, request: GenerationRequest
) -> VideoJob | None:
    existing = VideoJob.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None and existing.request_fingerprint != request.fingerprint():
        raise Conflict(
            "This Idempotency-Key was already used with different parameters.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return existing


def check_and_request_generation(
    user: User, request: GenerationRequest, *, idempotency_key: str | None = None
) -> tuple[VideoJob, bool]:
    """Create and enqueue a job; return (job, created). A retried key returns the first job.

    Runs the request gate first (a refusal raises, creating and charging nothing), charges the
    daily quota in the statement that inserts the job, and writes the reference image before
    the row so no row points at a missing file.
    """
    if idempotency_key:
        existing = _existing_for_idempotency_key(user, idempotency_key, request)
        if existing is not None:
            return existing, False
    decisions = run_request_gate(user, request)

    job_id = new_video_id()
    reference_name = ""
    if request.input_reference_png is not None:
        reference_name = default_storage.save(
            input_reference_name(job_id), ContentFile(request.input_reference_png)
        )
    try:
        job = VideoJob(
            id=job_id,
            user=user,
            model=request.model,
            prompt=request.prompt,
            seconds=request.seconds,
            width=request.width,
            height=request.height,
            seed=secrets.randbits(31),
            remixed_from=request.remixed_from,
            remix_source_name=request.remixed_from.video.name if request.remixed_from else "",
            input_reference=reference_name,
            idempotency_key=idempotency_key or None,
            request_fingerprint=request.fingerprint(),
            quota_day=quota_today(),
        )
        if decisions:
            # What the gate must remember commits with the job, or neither does.
            with transaction.atomic():
                charge_quota_and_enqueue(job)
                for decision in decisions:
                    decision.record(job)
        else:
            # One round trip: the quota charge, the row and the dispatchers' notification
            # commit together or not at all.
            charge_quota_and_enqueue(job)
        job._state.adding = False  # the row exists now: a later save() updates it
        send_video_event(job, "video.queued")
    except BaseException as error:
        if reference_name:
            default_storage.delete(reference_name)
        if isinstance(error, IntegrityError) and idempotency_key:
            # A concurrent request with the same key won the race; answer with its job.
            existing = _existing_for_idempotency_key(user, idempotency_key, request)
            if existing is not None:
                return existing, False
        raise
    return job, True


def do_delete_video(user: User, video_id: str) -> None:
    """Delete a video (any status). A worker still rendering it notices at its next heartbeat."""
    with transaction.atomic():
        job = access_video(user, video_id, for_update=True)
        send_video_event(job, "video.deleted")
        delete_job_files_after_commit(job)
        job.delete()
