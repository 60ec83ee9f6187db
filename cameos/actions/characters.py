"""Characters: pets, toys, drawn characters, objects. Registered from a short clip with a name,
without liveness, and refused when the clip shows a real human face."""

from __future__ import annotations

import io
import re
from typing import IO

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image
from rest_framework import status
from rest_framework.exceptions import NotFound

from cameos.crypto import save_sealed
from cameos.models import Cameo, ReferenceImage, new_character_id
from cameos.permissions import can_use_cameo
from generation.errors import InvalidRequest, OpenAIError
from sora_social.accounts.models import User

CHARACTER_MIN_SECONDS = 2.0
CHARACTER_MAX_SECONDS = 10.0
CHARACTER_STILLS = 3
STILL_MAX_SIDE = 512
# Frames of the clip searched for human faces; one face in this many or more refuses the clip.
FACE_SCAN_FRAMES = 12
FACE_FRAMES_TO_REFUSE = 2
_HANDLE_CHARACTERS = re.compile(r"[^a-z0-9_]+")


class CharacterRefused(OpenAIError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


def access_character(user: User, character_id: str) -> Cameo:
    """A character the user may use (their own, or one its owner shares); else NotFound."""
    cameo = (
        Cameo.objects.select_related("owner")
        .filter(pk=character_id, kind=Cameo.Kind.CHARACTER)
        .first()
    )
    if cameo is None or not can_use_cameo(user, cameo).is_allowed:
        raise NotFound(f"No character found with id '{character_id}'.")
    return cameo


def _handle_candidates(name: str) -> list[str]:
    base = _HANDLE_CHARACTERS.sub("_", name.lower()).strip("_")[:26] or "character"
    if len(base) < 3:
        base = f"{base}_character"[:26]
    return [base, *(f"{base}_{number}" for number in range(2, 100))]


def _is_handle_free(handle: str) -> bool:
    # A character never takes a person's handle: `@handle` must name one likeness.
    return not (
        User.objects.filter(handle=handle).exists()
        or Cameo.objects.filter(handle=handle)
        .exclude(status__in=[Cameo.Status.REVOKED, Cameo.Status.EXPIRED, Cameo.Status.FAILED])
        .exists()
    )


def _still_png(image: np.ndarray) -> bytes:
    still = Image.fromarray(image)
    still.thumbnail((STILL_MAX_SIDE, STILL_MAX_SIDE))
    buffer = io.BytesIO()
    still.save(buffer, format="PNG")
    return buffer.getvalue()


def _evenly(count: int, available: int) -> list[int]:
    if available <= count:
        return list(range(available))
    return [round(index * (available - 1) / (count - 1)) for index in range(count)]


def check_character_clip(upload: IO[bytes]) -> list[np.ndarray]:
    """Decode and check a character clip; returns the stills to keep.

    Refuses, naming the problem, a file that is not a bounded 2-10 s video, or a clip in which
    the face engine finds a human face.
    """
    from cameos.faces import get_engine
    from cameos.liveness.container import ContainerLimits, RecordingRefused, open_recording

    limits = ContainerLimits(
        max_bytes=settings.CAMEO_RECORDING_MAX_BYTES,
        min_seconds=CHARACTER_MIN_SECONDS,
        max_seconds=CHARACTER_MAX_SECONDS,
        requires_audio=False,
    )
    try:
        recording = open_recording(upload, limits)
    except RecordingRefused as refusal:
        raise CharacterRefused(
            f"The character clip can't be used: {refusal.message}.",
            param="video",
            code=f"video_{refusal.code}",
        ) from None
    frames = [sample.image for sample in recording.frames]
    engine = get_engine()
    frames_with_faces = sum(
        1 for index in _evenly(FACE_SCAN_FRAMES, len(frames)) if engine.detect(frames[index])
    )
    if frames_with_faces >= FACE_FRAMES_TO_REFUSE:
        raise CharacterRefused(
            "The clip shows a real person's face. A character can't be a person: register "
            "your own cameo instead.",
            param="video",
            code="character_has_human_face",
        )
    return [frames[index] for index in _evenly(CHARACTER_STILLS, len(frames))]


def do_create_character(user: User, *, name: str, upload: IO[bytes]) -> Cameo:
    """Register a character owned by `user`, usable at once (by its owner only, at first)."""
    name = " ".join(name.split())
    if not name:
        raise InvalidRequest("The character needs a name.", param="name")
    stills = check_character_clip(upload)
    character_id = new_character_id()
    stored: list[tuple[str, str]] = []
    try:
        for position, still in enumerate(stills):
            stored.append(
                save_sealed(f"cameos/{character_id}/still-{position}.sealed", _still_png(still))
            )
        for handle in _handle_candidates(name):
            if not _is_handle_free(handle):
                continue
            try:
                with transaction.atomic():
                    cameo = Cameo.objects.create(
                        id=character_id,
                        owner=user,
                        kind=Cameo.Kind.CHARACTER,
                        handle=handle,
                        name=name,
                        status=Cameo.Status.VERIFIED,
                        verified_at=timezone.now(),
                    )
                    ReferenceImage.objects.bulk_create(
                        ReferenceImage(cameo=cameo, position=position, file=file, key_id=key)
                        for position, (file, key) in enumerate(stored)
                    )
                return cameo
            except IntegrityError:
                continue  # someone took the handle between the check and the insert
        raise InvalidRequest(
            "No free handle is left for this name; choose another name.", param="name",
            code="character_name_taken",
        )
    except BaseException:
        for file, _key in stored:
            default_storage.delete(file)
        raise
