"""Erasing a cameo's biometric data (retention now; revocation reuses it), and key rotation."""

from __future__ import annotations

import datetime
import functools
import logging
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from cameos.crypto import current_key_id, reseal
from cameos.events import biometrics_erased_event, send_cameo_event
from cameos.models import Cameo, FaceVector, ReferenceImage
from generation.storage import delete_names

logger = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.44


def do_erase_biometrics(cameo: Cameo, *, why: str) -> dict[str, Any]:
    """Delete the cameo's reference images (files after commit) and face vectors; return what
    was erased, described without the data (for a deletion receipt).

    Caller holds the cameo's row lock inside a transaction. What remains is the cameo row, its
    consent records and its events: no face data.
    """
    references = list(ReferenceImage.objects.filter(cameo=cameo).order_by("position")
                      .values("file", "position", "created_at"))
    vectors = list(FaceVector.objects.filter(cameo=cameo).order_by("pk")
                   .values("engine", "dimension", "created_at"))
    FaceVector.objects.filter(cameo=cameo).delete()
    ReferenceImage.objects.filter(cameo=cameo).delete()
    files = [reference["file"] for reference in references]
    transaction.on_commit(lambda: delete_names(files))
    counts = {"reference_images": len(references), "face_vectors": len(vectors)}
    cameo.erased_at = timezone.now()
    cameo.save(update_fields=["erased_at"])
    biometrics_erased_event(cameo, erased=counts, why=why)
    return {
        "reference_images": [
            {"position": reference["position"], "created_at": reference["created_at"].isoformat()}
            for reference in references
        ],
        "face_vectors": [
            {"engine": vector["engine"], "dimension": vector["dimension"],
             "created_at": vector["created_at"].isoformat()}
            for vector in vectors
        ],
        "counts": counts,
    }


def retention_cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    months = settings.CAMEO_RETENTION_MONTHS
    return (now or timezone.now()) - datetime.timedelta(days=round(months * DAYS_PER_MONTH))


def do_expire_unused_cameos(now: datetime.datetime | None = None) -> int:
    """Expire person cameos unused since the retention cutoff, as the consent notice says."""
    cutoff = retention_cutoff(now)
    stale = (
        Cameo.objects.filter(kind=Cameo.Kind.PERSON,
                             status__in=[Cameo.Status.VERIFIED, Cameo.Status.IN_REVIEW])
        .annotate(last_activity=Coalesce("last_used_at", "verified_at", "created_at"))
        .filter(last_activity__lt=cutoff)
        .values_list("pk", flat=True)
    )
    expired = 0
    for cameo_id in list(stale):
        with transaction.atomic():
            cameo = Cameo.objects.select_for_update().filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff), pk=cameo_id,
                status__in=[Cameo.Status.VERIFIED, Cameo.Status.IN_REVIEW],
            ).first()
            if cameo is None:
                continue  # used (or changed) since the scan
            cameo.status = Cameo.Status.EXPIRED
            cameo.save(update_fields=["status"])
            do_erase_biometrics(cameo, why="retention")
            send_cameo_event(cameo, "cameo.expired")
            expired += 1
    return expired


def do_rotate_reference_keys() -> int:
    """Re-encrypt every reference image not sealed with the current key; returns how many."""
    current = current_key_id()
    rotated = 0
    for reference_id in ReferenceImage.objects.exclude(key_id=current).values_list("pk",
                                                                                    flat=True):
        with transaction.atomic():
            reference = ReferenceImage.objects.select_for_update().filter(pk=reference_id).first()
            if reference is None or reference.key_id == current:
                continue
            old_name = reference.file
            reference.file, reference.key_id = reseal(old_name)
            reference.save(update_fields=["file", "key_id"])
            transaction.on_commit(functools.partial(default_storage.delete, old_name))
            rotated += 1
    return rotated
