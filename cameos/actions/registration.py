"""Registering a person's cameo: consent, a challenge, the recording, and its check."""

from __future__ import annotations

import datetime
import secrets
import uuid
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import NotFound

from cameos.consent import NOTICE_VERSION
from cameos.crypto import save_sealed
from cameos.events import consent_given_event, send_cameo_event
from cameos.models import Cameo, Challenge, ConsentRecord, LivenessCheck
from generation.errors import Conflict, InvalidRequest, OpenAIError
from sora_social.accounts.models import User

CHALLENGE_DIGITS = 3
TURN_SEQUENCES = (("left", "right"), ("right", "left"))
# A person cameo still being set up or in use: a new registration continues it.
_IN_PROGRESS = (Cameo.Status.AWAITING_RECORDING, Cameo.Status.FAILED)


class RecordingNotAccepted(OpenAIError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


def _new_digits() -> str:
    # Distinct digits: "4 4 1" said one at a time is easy to mishear as two.
    digits = list("0123456789")
    return "".join(digits.pop(secrets.randbelow(len(digits))) for _ in range(CHALLENGE_DIGITS))


def live_person_cameo(user: User) -> Cameo | None:
    return (
        Cameo.objects.filter(owner=user, kind=Cameo.Kind.PERSON)
        .exclude(status__in=[Cameo.Status.REVOKED, Cameo.Status.EXPIRED])
        .first()
    )


def do_start_registration(user: User, *, notice_version: str, client: str) -> Challenge:
    """Record the owner's consent and issue a fresh challenge (older ones stop working).

    Continues the user's cameo when it is awaiting a recording or failed its last check;
    refuses while a check runs or once the cameo is verified or in review.
    """
    if notice_version != NOTICE_VERSION:
        raise InvalidRequest(
            f"The consent notice is now version {NOTICE_VERSION}; read it again and agree to "
            "that version.",
            param="notice_version",
            code="consent_notice_outdated",
        )
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one registration at a time
        cameo = live_person_cameo(user)
        if cameo is not None and cameo.status not in _IN_PROGRESS:
            raise Conflict(
                f"Your cameo is {cameo.status.replace('_', ' ')}; "
                + ("wait for its check to finish." if cameo.status == Cameo.Status.CHECKING
                   else "revoke it before registering again."),
                code="cameo_already_registered",
            )
        if cameo is None:
            cameo = Cameo.objects.create(
                owner=user,
                kind=Cameo.Kind.PERSON,
                handle=user.handle,
                name=user.display_name or user.handle,
            )
        else:
            cameo.status = Cameo.Status.AWAITING_RECORDING
            cameo.save(update_fields=["status"])
        ConsentRecord.objects.create(cameo=cameo, notice_version=notice_version, client=client)
        consent_given_event(cameo, notice_version=notice_version, client=client)
        cameo.challenges.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        return Challenge.objects.create(
            cameo=cameo,
            digits=_new_digits(),
            turns=list(TURN_SEQUENCES[secrets.randbelow(len(TURN_SEQUENCES))]),
            expires_at=now + datetime.timedelta(seconds=settings.CAMEO_CHALLENGE_SECONDS),
        )


def access_challenge(user: User, challenge_id: str, *, for_update: bool = False) -> Challenge:
    try:
        key = uuid.UUID(challenge_id)
    except ValueError:
        raise NotFound(f"No challenge found with id '{challenge_id}'.") from None
    queryset = Challenge.objects.select_related("cameo").filter(pk=key, cameo__owner=user)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    challenge = queryset.first()
    if challenge is None:
        raise NotFound(f"No challenge found with id '{challenge_id}'.")
    return challenge


def check_recording_upload(upload: IO[bytes]) -> None:
    """Refuse, naming the problem, an upload that is not a bounded 3-10 s video with sound."""
    from cameos.liveness.container import ContainerLimits, RecordingRefused, open_recording

    limits = ContainerLimits(max_bytes=settings.CAMEO_RECORDING_MAX_BYTES)
    try:
        open_recording(upload, limits)
    except RecordingRefused as refusal:
        raise RecordingNotAccepted(
            f"The recording can't be checked: {refusal.message}.",
            param="video",
            code=f"recording_{refusal.code}",
        ) from None
    finally:
        upload.seek(0)


def do_submit_recording(
    user: User, challenge_id: str, upload: IO[bytes], *, is_mirrored: bool
) -> LivenessCheck:
    """Spend the challenge on this recording and queue its check on a CPU worker.

    A refused upload (bad file, used or expired challenge) stores nothing and leaves the
    challenge as it was. The recording is kept encrypted only until its check ends.
    """
    from cameos.actions.checks import RECORDINGS_FOLDER
    from cameos.tasks import check_recording_task

    with transaction.atomic():
        challenge = access_challenge(user, challenge_id, for_update=True)
        if challenge.used_at is not None:
            raise Conflict(
                "This challenge was already used; start a new registration for a new one.",
                param="challenge_id",
                code="challenge_used",
            )
        if challenge.expires_at <= timezone.now():
            raise InvalidRequest(
                "This challenge has expired; start a new registration for a new one.",
                param="challenge_id",
                code="challenge_expired",
            )
        cameo = challenge.cameo
        if cameo.status != Cameo.Status.AWAITING_RECORDING:
            raise Conflict(f"Your cameo is {cameo.status}.", code="cameo_not_awaiting_recording")
        check_recording_upload(upload)
        check_id = uuid.uuid4()
        name, _key_id = save_sealed(f"{RECORDINGS_FOLDER}/{check_id}.sealed", upload.read())
        try:
            challenge.used_at = timezone.now()
            challenge.save(update_fields=["used_at"])
            check = LivenessCheck.objects.create(
                id=check_id, cameo=cameo, challenge=challenge, is_mirrored=is_mirrored,
                recording=name,
            )
            cameo.status = Cameo.Status.CHECKING
            cameo.failures = []
            cameo.save(update_fields=["status", "failures"])
        except BaseException:
            default_storage.delete(name)
            raise
        send_cameo_event(cameo, "cameo.check.queued", {"check_id": str(check.id)})
        transaction.on_commit(lambda: check_recording_task.delay(str(check_id)))
    return check
