"""The cameo check of the output gate, in process, on real renders of the reference backend
and the real face engine: tagged faces found, an untagged face blocked or recorded, uncertain
matches and per-video approval held, and the one visibility rule on every /v1 path."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image

from cameos.actions.appearances import do_approve_appearance
from cameos.actions.owner import do_decide_access, do_update_cameo_settings
from cameos.faces import get_engine
from cameos.models import Appearance, Cameo, CameoAccess, CameoEvent
from cameos.output import APPROVAL_HOLD, NOT_CONSENTED_CODE
from generation.models import DailyGenerationUsage, VideoHold, VideoJob
from generation.storage import output_name
from sora_social.notifications.models import Notification
from tests.cameos.cameos import registered_cameo
from tests.cameos.images import astronaut
from tests.cameos.videos import MakeVideo, rendered_and_checked, request_video
from tests.conftest import Member

VARIANTS = ("video", "thumbnail", "spritesheet")


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def make_video(django_capture_on_commit_callbacks: Callable[..., Any]) -> MakeVideo:
    def make(member: Member, prompt: str, *, photo: bytes | None = None) -> VideoJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = request_video(member, prompt, photo=photo)
        return rendered_and_checked(job, django_capture_on_commit_callbacks)

    return make


@pytest.fixture
def alice_cameo(alice: Member, bob: Member) -> Cameo:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    return cameo


@pytest.fixture(scope="module")
def alice_photo() -> bytes:
    return _png(astronaut())


def _download(member: Member, job: VideoJob, variant: str = "video") -> int:
    response = Client().get(f"/v1/videos/{job.pk}/content?variant={variant}",
                            HTTP_AUTHORIZATION=f"Bearer {member.key}")
    return response.status_code


def test_a_tagged_friend_is_found_in_the_output_and_the_video_completes(
    bob: Member, alice_cameo: Cameo, make_video: MakeVideo
) -> None:
    job = make_video(bob, "@alice waves from a rooftop at dusk")

    assert job.status == "completed"
    appearance = Appearance.objects.get(video=job)
    assert (appearance.cameo_id, appearance.source, appearance.consent_decision,
            appearance.owner_decision) == (alice_cameo.pk, "tagged", "allowed", "none")
    assert appearance.distance is not None
    assert appearance.distance <= get_engine().match_threshold
    assert appearance.first_seen_seconds is not None
    assert not VideoHold.objects.filter(video=job).exists()
    assert _download(bob, job) == 200


def test_an_untagged_face_of_someone_who_did_not_allow_it_blocks_the_video(
    alice: Member, charlie: Member, alice_cameo: Cameo, alice_photo: bytes, make_video: MakeVideo,
) -> None:
    job = make_video(charlie, "a portrait that slowly zooms in", photo=alice_photo)

    assert (job.status, job.error_code, job.is_quota_refunded) == (
        "failed", NOT_CONSENTED_CODE, True)
    assert DailyGenerationUsage.objects.get(user=charlie.user).used == 0
    for variant in VARIANTS:
        assert not default_storage.exists(output_name(job.pk, variant))
    assert not Appearance.objects.filter(video=job).exists()
    refused = CameoEvent.objects.get(cameo=alice_cameo, kind=CameoEvent.Kind.USE_REFUSED)
    assert (refused.actor_id, refused.reason, refused.video_id) == (
        charlie.user.pk, "found_in_output", job.pk)
    assert Notification.objects.filter(recipient=alice.user, kind="appearance.refused").count() == 1


def test_an_untagged_face_whose_owner_allows_everyone_is_recorded_and_the_owner_told(
    alice: Member, charlie: Member, alice_photo: bytes, make_video: MakeVideo,
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.EVERYONE)

    job = make_video(charlie, "a portrait that slowly zooms in", photo=alice_photo)

    assert job.status == "completed"
    appearance = Appearance.objects.get(video=job)
    assert (appearance.cameo_id, appearance.source, appearance.consent_decision,
            appearance.is_uncertain) == (cameo.pk, "detected", "allowed", False)
    assert CameoEvent.objects.filter(cameo=cameo, kind=CameoEvent.Kind.APPEARANCE_DETECTED,
                                     video_id=job.pk).count() == 1
    notification = Notification.objects.get(recipient=alice.user, kind="appearance.new")
    assert notification.data["video_id"] == job.pk


def test_with_approval_on_a_friends_video_is_held_until_the_owner_approves(
    alice: Member, bob: Member, alice_cameo: Cameo, make_video: MakeVideo
) -> None:
    do_update_cameo_settings(alice.user, alice_cameo.pk, requires_approval=True)

    job = make_video(bob, "@alice juggles three oranges")

    assert job.status == "completed"
    appearance = Appearance.objects.get(video=job)
    assert appearance.owner_decision == "pending"
    assert list(VideoHold.objects.filter(video=job).values_list("kind", flat=True)) == [
        APPROVAL_HOLD]
    for variant in VARIANTS:
        assert _download(bob, job, variant) == 409
    assert _download(alice, job) == 200  # she watches it to decide

    do_approve_appearance(alice.user, appearance.pk)

    assert _download(bob, job) == 200
    assert not VideoHold.objects.filter(video=job).exists()


def test_a_face_in_the_uncertain_band_is_held_for_the_owner_never_published(
    alice: Member, charlie: Member, alice_photo: bytes, monkeypatch: pytest.MonkeyPatch,
    make_video: MakeVideo,
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.EVERYONE)
    engine = get_engine()
    # Her face then matches no better than "maybe": just past the match threshold.
    monkeypatch.setattr(engine, "match_threshold", 0.02)

    job = make_video(charlie, "a portrait that slowly zooms in", photo=alice_photo)

    assert job.status == "completed"
    appearance = Appearance.objects.get(video=job, cameo=cameo)
    assert (appearance.source, appearance.is_uncertain, appearance.owner_decision) == (
        "detected", True, "pending")
    assert _download(charlie, job) == 409
    assert CameoEvent.objects.filter(cameo=cameo, kind=CameoEvent.Kind.APPEARANCE_UNCERTAIN
                                     ).count() == 1


def test_a_video_with_no_registered_face_completes_with_no_appearance(
    bob: Member, alice_cameo: Cameo, make_video: MakeVideo
) -> None:
    job = make_video(bob, "a red kite over a windy beach")

    assert job.status == "completed"
    assert not Appearance.objects.filter(video=job).exists()
