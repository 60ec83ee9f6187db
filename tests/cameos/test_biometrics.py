"""Biometric data: encrypted at rest, searched per engine, erased on time, keys rotated."""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from PIL import Image

from cameos.actions.erasure import do_expire_unused_cameos, do_rotate_reference_keys
from cameos.crypto import read_sealed
from cameos.faces import get_engine
from cameos.models import Cameo, CameoEvent, FaceVector, ReferenceImage
from cameos.search import cameos_within, nearest_cameos, nearest_query
from sora_social.accounts.actions import do_create_user
from tests.cameos.cameos import reference_face, registered_cameo
from tests.cameos.images import astronaut, group_photo_face
from tests.conftest import Member

pytestmark = pytest.mark.django_db


def _stored(name: str) -> bytes:
    return (Path(settings.MEDIA_ROOT) / name).read_bytes()


def test_reference_crops_are_encrypted_at_rest_and_open_with_the_key(alice: Member) -> None:
    cameo = registered_cameo(alice.user)

    reference = ReferenceImage.objects.get(cameo=cameo)
    sealed = _stored(reference.file)
    assert not sealed.startswith(b"\x89PNG")
    opened = Image.open(io.BytesIO(read_sealed(reference.file)))
    assert opened.format == "PNG"
    assert min(opened.size) >= 100
    vector = FaceVector.objects.get(cameo=cameo)
    assert (vector.engine, vector.dimension) == (get_engine().id, get_engine().dimension)
    assert cameo.face_engine == get_engine().id


def test_the_same_face_on_another_account_goes_to_review(alice: Member, bob: Member) -> None:
    registered_cameo(alice.user, astronaut())
    blurred = np.asarray(Image.fromarray(astronaut()).resize((384, 384)))

    copy = registered_cameo(bob.user, blurred)

    assert copy.status == Cameo.Status.IN_REVIEW
    assert CameoEvent.objects.filter(cameo=copy, kind=CameoEvent.Kind.SENT_TO_REVIEW).exists()


def test_search_finds_the_owner_and_never_mixes_engines(
    alice: Member, bob: Member, charlie: Member
) -> None:
    alice_cameo = registered_cameo(alice.user, astronaut())
    registered_cameo(bob.user, group_photo_face(1))
    engine = get_engine()
    # A vector of another engine with the same dimension, right on top of the probe.
    probe = reference_face(np.asarray(Image.fromarray(astronaut()).rotate(8)))
    FaceVector.objects.create(
        cameo=registered_cameo(charlie.user, group_photo_face(3)), engine="another-engine",
        dimension=engine.dimension, embedding=probe.embedding.vector,
    )

    matches = nearest_cameos(engine, probe.embedding.vector, limit=3)

    assert matches[0].cameo_id == alice_cameo.pk
    assert matches[0].distance <= engine.match_threshold
    assert all(match.distance > 1e-6 for match in matches)
    assert nearest_cameos(engine, probe.embedding.vector, exclude_owner_id=alice.user.pk,
                          max_distance=engine.match_threshold) == []


def test_the_exact_search_finds_every_cameo_within_reach_of_each_face() -> None:
    """Checked against numpy over a crowd of 60 cameos (owners, statuses, a second engine of
    the same dimension and one of another dimension mixed in), for a batch of faces near some
    of them and far from the rest."""
    engine = get_engine()
    rng = np.random.default_rng(5)
    dimension = engine.dimension
    crowd = rng.standard_normal((60, dimension)).astype(np.float32) * 0.08
    statuses = [Cameo.Status.VERIFIED, Cameo.Status.IN_REVIEW, Cameo.Status.REVOKED]
    cameos = []
    for n, vector in enumerate(crowd):
        owner = do_create_user(handle=f"crowd{n}", password="correct horse battery staple")
        cameo = Cameo.objects.create(owner=owner, kind=Cameo.Kind.PERSON, handle=f"crowd{n}",
                                     name=f"crowd {n}", status=statuses[n % 3])
        FaceVector.objects.create(cameo=cameo, engine=engine.id, dimension=dimension,
                                  embedding=vector)
        FaceVector.objects.create(cameo=cameo, engine=engine.id, dimension=dimension,
                                  embedding=vector + 0.02)
        cameos.append(cameo)
    # Right on top of every face: another engine's vectors, same dimension and a larger one.
    for n, other_dimension in ((0, dimension), (1, dimension * 2)):
        FaceVector.objects.create(cameo=cameos[n], engine="another-engine",
                                  dimension=other_dimension,
                                  embedding=np.zeros(other_dimension, dtype=np.float32))
    faces = [crowd[0] + 0.05, crowd[7] - 0.01, crowd[8] + 0.03, np.full(dimension, 3.0)]
    reach = 0.6

    found = cameos_within(engine, faces, max_distance=reach,
                          statuses=[Cameo.Status.VERIFIED, Cameo.Status.IN_REVIEW],
                          exclude_owner_id=cameos[8].owner_id)

    for face, result in zip(faces, found, strict=True):
        expected = {}
        for n, cameo in enumerate(cameos):
            distance = min(np.linalg.norm(crowd[n] - face), np.linalg.norm(crowd[n] + 0.02 - face))
            if (distance <= reach and cameo.status != Cameo.Status.REVOKED
                    and cameo.owner_id != cameos[8].owner_id):
                expected[cameo.pk] = distance
        assert {cameo_id: match.distance for cameo_id, match in result.items()} == (
            pytest.approx(expected, abs=1e-4)
        )
        assert all(match.owner_id == Cameo.objects.get(pk=cameo_id).owner_id
                   for cameo_id, match in result.items())
    assert found[0] and found[1] and not found[3]
    assert cameos[8].pk not in found[2]
    assert cameos_within(engine, [], max_distance=reach, statuses=[]) == []


def test_the_search_uses_the_engines_hnsw_index(alice: Member) -> None:
    registered_cameo(alice.user)
    engine = get_engine()
    query, parameters = nearest_query(
        engine, np.full(engine.dimension, 0.1, dtype=np.float32), limit=10,
        statuses=[Cameo.Status.VERIFIED], exclude_owner_id=None,
    )

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert f"cameos_facevector_hnsw_{engine.dimension}_l2" in plan


def test_unused_cameos_lose_their_biometric_data_after_the_retention_period(
    alice: Member, bob: Member, django_capture_on_commit_callbacks: Any
) -> None:
    stale = registered_cameo(alice.user, astronaut())
    fresh = registered_cameo(bob.user, group_photo_face(2))
    long_ago = timezone.now() - datetime.timedelta(days=31 * settings.CAMEO_RETENTION_MONTHS)
    Cameo.objects.filter(pk=stale.pk).update(verified_at=long_ago, last_used_at=long_ago)
    files = list(ReferenceImage.objects.filter(cameo=stale).values_list("file", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        assert do_expire_unused_cameos() == 1

    stale.refresh_from_db()
    assert stale.status == Cameo.Status.EXPIRED
    assert FaceVector.objects.filter(cameo=stale).count() == 0
    assert ReferenceImage.objects.filter(cameo=stale).count() == 0
    assert not any((Path(settings.MEDIA_ROOT) / name).exists() for name in files)
    erased = CameoEvent.objects.get(cameo=stale, kind=CameoEvent.Kind.BIOMETRICS_ERASED)
    assert erased.details == {"reference_images": 1, "face_vectors": 1}
    assert erased.reason == "retention"
    assert Cameo.objects.get(pk=fresh.pk).status == Cameo.Status.VERIFIED
    assert FaceVector.objects.filter(cameo=fresh).count() == 1


def test_rotating_the_key_re_encrypts_every_reference(
    alice: Member, django_capture_on_commit_callbacks: Any
) -> None:
    registered_cameo(alice.user)
    old_key = settings.CAMEO_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = ReferenceImage.objects.get()
    plain = read_sealed(before.file)

    with override_settings(CAMEO_ENCRYPTION_KEYS=[new_key, old_key]), \
            django_capture_on_commit_callbacks(execute=True):
        assert do_rotate_reference_keys() == 1
        assert do_rotate_reference_keys() == 0

    after = ReferenceImage.objects.get()
    assert after.key_id != before.key_id
    assert not (Path(settings.MEDIA_ROOT) / before.file).exists()
    with override_settings(CAMEO_ENCRYPTION_KEYS=[new_key]):
        assert read_sealed(after.file) == plain


def test_a_sealed_recording_no_check_refers_to_is_swept_after_an_hour(alice: Member) -> None:
    import os

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from cameos.actions.checks import RECORDINGS_FOLDER, do_delete_orphan_recordings

    orphan = default_storage.save(f"{RECORDINGS_FOLDER}/orphan.sealed", ContentFile(b"x"))
    recent = default_storage.save(f"{RECORDINGS_FOLDER}/recent.sealed", ContentFile(b"x"))
    hour_ago = (timezone.now() - datetime.timedelta(hours=2)).timestamp()
    os.utime(Path(settings.MEDIA_ROOT) / orphan, (hour_ago, hour_ago))

    assert do_delete_orphan_recordings() == 1

    assert not default_storage.exists(orphan)
    assert default_storage.exists(recent)
    default_storage.delete(recent)
