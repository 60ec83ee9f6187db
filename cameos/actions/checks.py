"""The worker side of a registration: claim the check, run liveness, keep only what is needed.

Every transition is a conditional UPDATE, so a redelivered message, a second worker or a
reaped check never finishes a registration twice.
"""

from __future__ import annotations

import datetime
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from cameos.crypto import read_sealed, save_sealed
from cameos.events import (
    check_failed_event,
    check_passed_event,
    send_cameo_event,
    sent_to_review_event,
)
from cameos.faces.base import FaceEngine
from cameos.liveness.check import ReferenceFace
from cameos.models import Cameo, FaceVector, LivenessCheck, ReferenceImage
from cameos.search import cameos_within

logger = logging.getLogger(__name__)

CHECK_LEASE_SECONDS = 120
CHECK_MAX_ATTEMPTS = 3
# A queued check whose message was lost (broker outage) is sent again after this long.
CHECK_REQUEUE_SECONDS = 60
# Progress is written (and pushed) at most this often, in percentage points.
PROGRESS_STEP = 5


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


def _lease_until() -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=CHECK_LEASE_SECONDS)


def do_claim_check(check_id: str) -> LivenessCheck | None:
    """Take a queued check, or a running one whose worker vanished; None when neither."""
    now = timezone.now()
    claimable = Q(status=LivenessCheck.Status.QUEUED) | Q(
        status=LivenessCheck.Status.RUNNING, lease_until__lt=now
    )
    claimed = LivenessCheck.objects.filter(claimable, pk=check_id).update(
        status=LivenessCheck.Status.RUNNING,
        attempts=F("attempts") + 1,
        lease_until=_lease_until(),
        progress=0,
        stage="starting",
    )
    if not claimed:
        return None
    return LivenessCheck.objects.select_related("cameo__owner", "challenge").get(pk=check_id)


def do_record_check_progress(check: LivenessCheck, percent: int, stage: str) -> None:
    """Extend the lease and tell the owner how far the check is."""
    if percent - check.progress < PROGRESS_STEP and stage == check.stage:
        return
    check.progress, check.stage = percent, stage
    LivenessCheck.objects.filter(pk=check.pk, status=LivenessCheck.Status.RUNNING).update(
        progress=percent, stage=stage, lease_until=_lease_until()
    )
    send_cameo_event(
        check.cameo, "cameo.check.progress",
        {"check_id": str(check.pk), "progress": percent, "stage": stage},
    )


def recording_to_file(check: LivenessCheck, folder: Path) -> Path:
    """Decrypt the check's recording into `folder` (a private temporary directory)."""
    path = folder / "recording"
    path.write_bytes(read_sealed(check.recording))
    return path


def _delete_recording_after_commit(name: str) -> None:
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def store_reference_faces(
    cameo: Cameo, faces: Sequence[ReferenceFace], engine: FaceEngine
) -> list[str]:
    """Seal the crops in storage and write their embeddings; returns the stored names.

    The caller holds the transaction; it deletes the names if that transaction fails.
    """
    stored = []
    for position, face in enumerate(faces):
        if face.embedding.engine != engine.id:
            raise ValueError(f"embedding of {face.embedding.engine}, engine is {engine.id}")
        name, key = save_sealed(f"cameos/{cameo.pk}/face-{position}.sealed", _png(face.image))
        stored.append(name)
        reference = ReferenceImage.objects.create(
            cameo=cameo, position=position, file=name, key_id=key
        )
        FaceVector.objects.create(
            cameo=cameo,
            reference=reference,
            engine=engine.id,
            dimension=engine.dimension,
            embedding=face.embedding.vector.astype(np.float32),
        )
    return stored


def other_accounts_matching(
    cameo: Cameo, faces: Sequence[ReferenceFace], engine: FaceEngine
) -> list[str]:
    """Ids of other accounts' live person cameos whose face matches one of `faces` (an exact
    search: a second account of a registered face must not slip past review)."""
    searches = cameos_within(
        engine, [face.embedding.vector for face in faces], max_distance=engine.match_threshold,
        statuses=(Cameo.Status.VERIFIED, Cameo.Status.IN_REVIEW), exclude_owner_id=cameo.owner_id,
    )
    return sorted({cameo_id for found in searches for cameo_id in found})


def do_verify_cameo(
    check: LivenessCheck | None, cameo: Cameo, faces: Sequence[ReferenceFace], engine: FaceEngine
) -> str:
    """Keep the reference faces; verified, or in review when the face is another account's.

    Returns the cameo's new status. Changes nothing (and returns its status) when the check is
    no longer this worker's to finish.
    """
    stored: list[str] = []
    try:
        with transaction.atomic():
            locked = Cameo.objects.select_for_update().get(pk=cameo.pk)
            if check is not None and not _finish_check_row(check, LivenessCheck.Status.PASSED):
                return locked.status
            stored = store_reference_faces(locked, faces, engine)
            duplicates = other_accounts_matching(locked, faces, engine)
            locked.status = Cameo.Status.IN_REVIEW if duplicates else Cameo.Status.VERIFIED
            locked.verified_at = None if duplicates else timezone.now()
            locked.face_engine = engine.id
            locked.failures = []
            locked.save(update_fields=["status", "verified_at", "face_engine", "failures"])
            if duplicates:
                sent_to_review_event(locked, reason="matches_another_account")
            else:
                check_passed_event(locked, references=len(faces))
            send_cameo_event(locked, "cameo.check.finished", {
                "check_id": str(check.pk) if check else None, "failures": []
            })
            cameo.status = locked.status
            return locked.status
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


def do_fail_check(check: LivenessCheck, failures: Sequence[Failure]) -> bool:
    """Record why the registration failed; False when the check was not ours to finish."""
    listed = [{"code": failure.code, "message": failure.message} for failure in failures]
    with transaction.atomic():
        cameo = Cameo.objects.select_for_update().get(pk=check.cameo_id)
        if not _finish_check_row(check, LivenessCheck.Status.FAILED, failures=listed):
            return False
        if cameo.status == Cameo.Status.CHECKING:
            cameo.status = Cameo.Status.FAILED
            cameo.failures = listed
            cameo.save(update_fields=["status", "failures"])
            check_failed_event(cameo, failures=listed)
        send_cameo_event(cameo, "cameo.check.finished",
                         {"check_id": str(check.pk), "failures": listed})
    return True


def _finish_check_row(
    check: LivenessCheck, status: str, *, failures: list[dict[str, str]] | None = None
) -> bool:
    finished = LivenessCheck.objects.filter(
        pk=check.pk, status=LivenessCheck.Status.RUNNING, attempts=check.attempts
    ).update(
        status=status,
        progress=100,
        stage="done",
        failures=failures or [],
        recording="",
        finished_at=timezone.now(),
        lease_until=None,
    )
    if finished:
        _delete_recording_after_commit(check.recording)
    return bool(finished)


def run_check(check_id: str) -> None:
    """Claim the check and run it to the end: safe to run any number of times for one id."""
    from cameos.faces import get_engine
    from cameos.liveness import check_liveness

    check = do_claim_check(check_id)
    if check is None:
        logger.info("liveness check %s is not waiting; nothing to do", check_id)
        return
    if check.attempts > CHECK_MAX_ATTEMPTS:
        do_fail_check(check, [Failure(
            "check_interrupted",
            "The check was interrupted too many times; record again, please.",
        )])
        return
    engine = get_engine()
    challenge = check.challenge
    with tempfile.TemporaryDirectory(prefix=f"check-{check_id}-") as folder:
        path = recording_to_file(check, Path(folder))
        result = check_liveness(
            path,
            challenge.digits,
            list(challenge.turns),
            mirrored=check.is_mirrored,
            engine=engine,
            progress=lambda percent, stage: do_record_check_progress(check, percent, stage),
        )
    if result.is_live:
        do_verify_cameo(check, check.cameo, result.references, engine)
    else:
        do_fail_check(
            check, [Failure(failure.code, failure.message) for failure in result.failures]
        )


def checks_to_resend() -> list[str]:
    """Checks whose message may be lost: queued for a while, or running with a dead lease."""
    now = timezone.now()
    stale = Q(
        status=LivenessCheck.Status.QUEUED,
        created_at__lt=now - datetime.timedelta(seconds=CHECK_REQUEUE_SECONDS),
    ) | Q(status=LivenessCheck.Status.RUNNING, lease_until__lt=now)
    return [str(pk) for pk in LivenessCheck.objects.filter(stale).values_list("pk", flat=True)]


RECORDINGS_FOLDER = "cameos/recordings"
# An upload whose transaction never committed leaves a sealed file no check names; it is
# removed once it is this old (far longer than any upload's transaction).
ORPHAN_RECORDING_SECONDS = 3600


def do_delete_orphan_recordings() -> int:
    """Delete sealed recordings that no queued or running check refers to; returns how many."""
    try:
        # Not `exists` first: on S3 a folder is only a prefix, and "exists" says no.
        _folders, names = default_storage.listdir(RECORDINGS_FOLDER)
    except FileNotFoundError:  # local storage, before the first upload
        return 0
    referenced = set(
        LivenessCheck.objects.exclude(recording="").values_list("recording", flat=True)
    )
    cutoff = timezone.now() - datetime.timedelta(seconds=ORPHAN_RECORDING_SECONDS)
    deleted = 0
    for name in names:
        path = f"{RECORDINGS_FOLDER}/{name}"
        if path in referenced or default_storage.get_modified_time(path) > cutoff:
            continue
        default_storage.delete(path)
        deleted += 1
    return deleted
