"""Revoking a cameo: renders in flight cancelled and refunded, every video with the cameo and
the remixes descending from them withdrawn, the face data gone from the table and the index,
and a receipt. The cascade runs as the worker runs it (Celery's task, here in process)."""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from cameos.actions.owner import do_decide_access
from cameos.actions.revocation import do_run_revocation_cascade
from cameos.faces import get_engine
from cameos.models import (
    Cameo,
    CameoAccess,
    CameoEvent,
    ConsentRecord,
    DeletionReceipt,
    FaceVector,
    ReferenceImage,
)
from cameos.search import nearest_cameos
from generation.actions.output import do_claim_output_check, do_finish_output_check
from generation.media.sampling import sample_video
from generation.models import DailyGenerationUsage, VideoJob
from generation.output_gate import run_output_checks
from generation.rendering import render_job
from generation.storage import copy_from_storage, output_name
from sora_social.celery import app as celery_app
from sora_social.notifications.models import Notification
from tests.cameos.cameos import registered_cameo
from tests.cameos.images import astronaut
from tests.cameos.videos import passed_without_rendering, request_video
from tests.conftest import Member

pytestmark = pytest.mark.django_db



@pytest.fixture
def tasks_in_process() -> Iterator[None]:
    """Celery tasks sent during the test run here, at once, instead of on a worker."""
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False


@pytest.fixture
def alice_cameo(alice: Member, bob: Member) -> Cameo:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    return cameo


def test_revoking_cancels_renders_withdraws_videos_and_remixes_and_erases_the_face(
    alice: Member, bob: Member, alice_cameo: Cameo, tmp_path: Path, tasks_in_process: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    her_vector = np.asarray(FaceVector.objects.get(cameo=alice_cameo).embedding,
                            dtype=np.float32)
    with django_capture_on_commit_callbacks(execute=True):
        videos = [passed_without_rendering(request_video(bob, f"@alice scene {n}"), tmp_path)
                  for n in range(2)]
        remix = passed_without_rendering(request_video(bob, "again", remix_of=videos[0]),
                                         tmp_path)
        unrelated = passed_without_rendering(request_video(bob, "a kite"), tmp_path)
        in_flight = request_video(bob, "@alice one more")
    assert DailyGenerationUsage.objects.get(user=bob.user).used == 5
    references = list(ReferenceImage.objects.filter(cameo=alice_cameo).values_list("file",
                                                                                     flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.api().post(f"/api/cameos/{alice_cameo.pk}/revoke")

    assert response.status_code == 202
    # Gone from the table and from the index.
    assert FaceVector.objects.filter(cameo=alice_cameo).count() == 0
    assert ReferenceImage.objects.filter(cameo=alice_cameo).count() == 0
    assert all(not default_storage.exists(name) for name in references)
    matches = nearest_cameos(get_engine(), her_vector, statuses=Cameo.Status.values)
    assert alice_cameo.pk not in [match.cameo_id for match in matches]
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.error_code) == ("cancelled", "cameo_revoked")
    assert DailyGenerationUsage.objects.get(user=bob.user).used == 4  # refunded
    for video in (*videos, remix):
        video.refresh_from_db()
        # The remix shows her too (it inherited her appearance): withdrawn for the same reason.
        assert (video.is_withdrawn, video.withdrawal_reason) == (True, "cameo_revoked")
        assert not default_storage.exists(output_name(video.pk, "video"))
    unrelated.refresh_from_db()
    assert not unrelated.is_withdrawn
    # What remains: a record without biometric data.
    cameo = Cameo.objects.get(pk=alice_cameo.pk)
    assert (cameo.status, cameo.revoked_at is not None, cameo.erased_at is not None) == (
        "revoked", True, True)
    assert ConsentRecord.objects.get(cameo=cameo).withdrawn_at is not None
    kinds = list(CameoEvent.objects.filter(cameo=cameo).values_list("kind", flat=True))
    assert {"revoked", "biometrics_erased", "revocation_completed"} <= set(kinds)
    # The receipt lists what was erased and withdrawn, and when.
    receipt = alice.api().get(f"/api/cameos/{cameo.pk}/receipt").json()
    assert receipt["is_complete"] is True
    assert len(receipt["erased"]["face_vectors"]) == 1
    assert receipt["erased"]["face_vectors"][0]["engine"] == get_engine().id
    assert len(receipt["erased"]["reference_images"]) == 1
    assert receipt["videos_withdrawn"] == sorted([videos[0].pk, videos[1].pk, remix.pk])
    assert receipt["jobs_cancelled"] == [in_flight.pk]
    assert receipt["biometrics_erased_at"] is not None
    assert Notification.objects.filter(recipient=alice.user, kind="cameo.revoked").count() == 1
    # One notice per batch for each author, listing the videos.
    withdrawn = Notification.objects.get(recipient=bob.user, kind="video.withdrawn")
    assert (withdrawn.title, sorted(withdrawn.data["video_ids"])) == (
        "3 of your videos were removed", sorted([videos[0].pk, videos[1].pk, remix.pk]))
    cancelled = Notification.objects.get(recipient=bob.user, kind="video.cancelled")
    assert cancelled.data["video_ids"] == [in_flight.pk]
    # A new request tagging her is refused.
    refused = bob.api().post("/v1/videos", {"prompt": "@alice again", "model": "sora-2",
                                                "seconds": "4", "size": "720x1280"},
                                format="json")
    assert refused.status_code == 403


def test_the_cascade_and_the_revocation_are_safe_to_run_twice(
    alice: Member, bob: Member, alice_cameo: Cameo, tmp_path: Path, tasks_in_process: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        video = passed_without_rendering(request_video(bob, "@alice waves"), tmp_path)
        first = alice.api().post(f"/api/cameos/{alice_cameo.pk}/revoke").json()
    receipt = DeletionReceipt.objects.get(cameo=alice_cameo)
    completed_at = receipt.completed_at

    with django_capture_on_commit_callbacks(execute=True):
        second = alice.api().post(f"/api/cameos/{alice_cameo.pk}/revoke").json()
        again = do_run_revocation_cascade(alice_cameo.pk)

    assert second["requested_at"] == first["requested_at"]
    assert again is not None
    assert (again.videos_withdrawn, again.completed_at) == ([video.pk], completed_at)
    assert DeletionReceipt.objects.count() == 1
    assert CameoEvent.objects.filter(cameo=alice_cameo, kind="revocation_completed").count() == 1
    assert VideoJob.objects.get(pk=video.pk).withdrawal_reason == "cameo_revoked"


def test_a_cascade_whose_message_was_lost_is_resumed(
    alice: Member, bob: Member, alice_cameo: Cameo, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from cameos.tasks import resume_revocations_task

    with django_capture_on_commit_callbacks(execute=False):  # the cascade's message is lost
        video = passed_without_rendering(request_video(bob, "@alice waves"), tmp_path)
        alice.api().post(f"/api/cameos/{alice_cameo.pk}/revoke")
    assert resume_revocations_task() == 0  # too soon: it may still be on its way
    DeletionReceipt.objects.update(requested_at=DeletionReceipt.objects.get().requested_at
                                   - datetime.timedelta(minutes=2))

    assert resume_revocations_task() == 1

    assert VideoJob.objects.get(pk=video.pk).is_withdrawn
    assert resume_revocations_task() == 0


def test_a_revocation_landing_while_an_untagged_face_is_checked_still_withdraws_the_video(
    alice: Member, charlie: Member, tasks_in_process: None, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.EVERYONE)
    photo = io.BytesIO()
    Image.fromarray(astronaut()).save(photo, format="PNG")
    with django_capture_on_commit_callbacks(execute=True):
        job = request_video(charlie, "a portrait that slowly zooms in", photo=photo.getvalue())
    render_job(job.pk)
    lease = do_claim_output_check(job.pk)
    assert lease is not None
    sample = sample_video(copy_from_storage(lease.job.video.name, tmp_path / "video.mp4"))
    verdicts = run_output_checks(lease.job, sample)  # her face, found before she revokes

    with django_capture_on_commit_callbacks(execute=True):
        alice.api().post(f"/api/cameos/{cameo.pk}/revoke")
    receipt = DeletionReceipt.objects.get(cameo=cameo)
    assert receipt.videos_withdrawn == []  # the cascade could not see this video yet
    with django_capture_on_commit_callbacks(execute=True):
        assert do_finish_output_check(lease, verdicts) == "completed"

    # Its record saw the revocation under the cameo's lock and ran the cascade again.
    job.refresh_from_db()
    assert (job.is_withdrawn, job.withdrawal_reason) == (True, "cameo_revoked")
    assert not default_storage.exists(output_name(job.pk, "video"))
    receipt.refresh_from_db()
    assert receipt.videos_withdrawn == [job.pk]
