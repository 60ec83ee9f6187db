"""Revoking a cameo: the likeness is withdrawn from everything it is in, and erased.

`do_revoke_cameo` runs in the owner's request and does what must be true at once: the cameo is
revoked (no new request can use it: the request gate and the output check lock the same row),
its consent is withdrawn, its reference crops and embeddings are gone from the table and the
index, and a deletion receipt says what was erased and when. The rest is
`do_run_revocation_cascade`, in the background, in batches, safe to run any number of times:
renders in flight that show the cameo are cancelled (authors refunded and told), and every
video that contains it is withdrawn with the remixes descending from it.
"""

from __future__ import annotations

import datetime
import itertools
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from cameos.actions.erasure import do_erase_biometrics
from cameos.actions.owner import access_own_cameo
from cameos.events import revocation_completed_event, revoked_event, send_cameo_event
from cameos.models import (
    Appearance,
    Cameo,
    ConsentRecord,
    DeletionReceipt,
    LivenessCheck,
)
from generation.actions.withdrawal import ACTIVE, do_cancel_jobs, do_withdraw_videos
from generation.models import VideoJob
from generation.storage import delete_names
from sora_social.accounts.models import User
from sora_social.notifications.actions import do_notify

logger = logging.getLogger(__name__)

REVOKED_CODE = "cameo_revoked"
CANCELLED_MESSAGE = (
    "A person in this video withdrew their likeness before it was finished. It was cancelled "
    "and your quota refunded."
)
WITHDRAWN_MESSAGE = "A person who appears in this video withdrew their likeness."


def do_revoke_cameo(user: User, cameo_id: str) -> DeletionReceipt:
    """Revoke the user's cameo now and erase its biometric data; the cascade over videos
    follows in the background. Revoking again returns the same receipt."""
    with transaction.atomic():
        cameo = access_own_cameo(user, cameo_id, for_update=True)
        existing = DeletionReceipt.objects.filter(cameo=cameo).first()
        if cameo.status == Cameo.Status.REVOKED and existing is not None:
            return existing
        now = timezone.now()
        cameo.status = Cameo.Status.REVOKED
        cameo.revoked_at = now
        cameo.save(update_fields=["status", "revoked_at"])
        ConsentRecord.objects.filter(cameo=cameo, withdrawn_at__isnull=True).update(
            withdrawn_at=now
        )
        revoked_event(cameo)
        erased = do_erase_biometrics(cameo, why="revoked")
        # A registration recording still waiting for its check goes too.
        recordings = [name for name in LivenessCheck.objects.filter(cameo=cameo)
                      .exclude(recording="").values_list("recording", flat=True)]
        LivenessCheck.objects.filter(cameo=cameo).exclude(recording="").update(recording="")
        transaction.on_commit(lambda: delete_names(recordings))
        erased["recordings"] = len(recordings)
        receipt = DeletionReceipt.objects.create(
            cameo=cameo, requested_at=now, biometrics_erased_at=now, erased=erased
        )
        send_cameo_event(cameo, "cameo.revoked")
        from cameos.tasks import revocation_cascade_task

        transaction.on_commit(lambda: revocation_cascade_task.delay(cameo.pk))
    return receipt


def _progressed(receipt: DeletionReceipt) -> None:
    DeletionReceipt.objects.filter(pk=receipt.pk).update(progressed_at=timezone.now())


def _batches(ids: list[str], size: int) -> Iterator[list[str]]:
    iterator = iter(ids)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def do_run_revocation_cascade(
    cameo_id: str, *, batch_size: int | None = None
) -> DeletionReceipt | None:
    """Cancel the renders and withdraw the videos that show a revoked cameo, then complete its
    receipt. Each batch is its own transaction; a run cut short is finished by the next. None
    if the cameo was never revoked (or its owner's account is gone)."""
    size = batch_size or settings.REVOCATION_BATCH_SIZE
    receipt = DeletionReceipt.objects.select_related("cameo").filter(cameo_id=cameo_id).first()
    if receipt is None:
        logger.warning("no revocation of %s to carry out", cameo_id)
        return None
    video_ids = list(
        Appearance.objects.filter(cameo_id=cameo_id).order_by("video_id")
        .values_list("video_id", flat=True)
    )
    cancelled: list[str] = []
    withdrawn: list[str] = []
    active = list(VideoJob.objects.filter(pk__in=video_ids, status__in=ACTIVE)
                  .values_list("pk", flat=True))
    for batch in _batches(active, size):
        cancelled += do_cancel_jobs(batch, code=REVOKED_CODE, message=CANCELLED_MESSAGE)
        _progressed(receipt)
    made = list(VideoJob.objects.filter(pk__in=video_ids, status=VideoJob.Status.COMPLETED,
                                        withdrawn_at__isnull=True).values_list("pk", flat=True))
    for batch in _batches(made, size):
        report = do_withdraw_videos(batch, code=REVOKED_CODE, message=WITHDRAWN_MESSAGE)
        withdrawn += report.withdrawn
        cancelled += report.cancelled
        _progressed(receipt)
    with transaction.atomic():
        receipt = DeletionReceipt.objects.select_for_update().select_related("cameo").get(
            pk=receipt.pk
        )
        is_first_completion = receipt.completed_at is None
        if withdrawn or cancelled or is_first_completion:
            receipt.videos_withdrawn = sorted(set(receipt.videos_withdrawn) | set(withdrawn))
            receipt.jobs_cancelled = sorted(set(receipt.jobs_cancelled) | set(cancelled))
            receipt.completed_at = timezone.now()
            receipt.save(update_fields=["videos_withdrawn", "jobs_cancelled", "completed_at"])
            revocation_completed_event(receipt.cameo, withdrawn=len(withdrawn),
                                       cancelled=len(cancelled))
        if is_first_completion:
            do_notify(receipt.cameo.owner_id, kind="cameo.revoked",
                      title="Your cameo is revoked and your face data erased",
                      body=f"{len(receipt.videos_withdrawn)} videos were withdrawn and "
                           f"{len(receipt.jobs_cancelled)} renders cancelled.",
                      data={"cameo_id": cameo_id})
            send_cameo_event(receipt.cameo, "cameo.revocation_completed")
    return receipt


# A cascade that has not moved for this long lost its message or its worker.
RESUME_AFTER = datetime.timedelta(seconds=60)


def unfinished_revocations() -> list[str]:
    """Revoked cameos whose cascade stopped before completing: not started, or no batch
    finished, within RESUME_AFTER (a long cascade still running is left alone)."""
    cutoff = timezone.now() - RESUME_AFTER
    last_moved = Coalesce("progressed_at", "requested_at")
    return list(DeletionReceipt.objects.filter(completed_at__isnull=True)
                .alias(last_moved=last_moved).filter(last_moved__lt=cutoff)
                .values_list("cameo_id", flat=True))
