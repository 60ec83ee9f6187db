"""Cameos end to end on the live stack: a recorded registration checked by a real CPU worker,
characters and tags over /v1 with the official SDK, and the tagged face found in the output."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import openai
import pytest
import skimage.data
from django.conf import settings

from cameos.actions.owner import do_decide_access
from cameos.consent import NOTICE_VERSION
from cameos.faces import get_engine
from cameos.models import Cameo, CameoAccess, CameoEvent, FaceVector, ReferenceImage
from tests.cameos.cameos import registered_cameo
from tests.cameos.clips import still_clip
from tests.cameos.images import astronaut
from tests.cameos.recordings import RecordingSpec, build_recording, heard_correctly
from tests.conftest import LiveStack, Member
from tests.generation.videos import sdk
from tests.private_servers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHECK_TIMEOUT = 120
RENDER_TIMEOUT = 120


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cameo-media")




def _register_and_upload(
    stack: LiveStack, member: Member, media_dir: Path, *, say: str | None = None
) -> dict[str, Any]:
    """Start a registration, record the challenge (saying `say` instead of its digits when
    given), upload it and wait for the worker's verdict; returns the finished check."""
    started = stack.request(member, "POST", "/api/cameos/registrations",
                   json={"notice_version": NOTICE_VERSION, "agreed": True})
    assert started.status_code == 201, started.text
    challenge = started.json()["challenge"]
    digits = "".join(challenge["digits"])
    spec = RecordingSpec(digits=say or digits, turns=tuple(challenge["turns"]))
    recording = build_recording(media_dir, spec if say else heard_correctly(spec))
    with recording.open("rb") as upload:
        accepted = stack.request(member, "POST",
                        f"/api/cameos/registrations/{challenge['id']}/recording",
                        files={"video": ("recording.mp4", upload, "video/mp4")})
    assert accepted.status_code == 202, accepted.text
    check_id = accepted.json()["id"]

    seen: dict[str, Any] = {}

    def finished() -> bool:
        seen.update(stack.request(member, "GET", f"/api/cameos/checks/{check_id}").json())
        return seen["status"] in ("passed", "failed")

    wait_for(finished, timeout=CHECK_TIMEOUT, what="the liveness check to finish")
    return seen


def _sealed_recordings(check_id: str) -> list[Path]:
    return list((Path(settings.MEDIA_ROOT) / "cameos" / "recordings").glob(f"{check_id}*"))


def test_a_recorded_registration_is_verified_by_the_worker(
    live_stack: LiveStack, alice: Member, media_dir: Path
) -> None:
    check = _register_and_upload(live_stack, alice, media_dir)

    assert check["status"] == "passed", check["failures"]
    assert check["cameo_status"] == "verified"
    cameo = Cameo.objects.get(owner=alice.user)
    assert cameo.status == Cameo.Status.VERIFIED
    assert 3 <= ReferenceImage.objects.filter(cameo=cameo).count() <= 5
    assert FaceVector.objects.filter(cameo=cameo, engine=get_engine().id).count() == (
        ReferenceImage.objects.filter(cameo=cameo).count()
    )
    assert _sealed_recordings(check["id"]) == []  # the recording is deleted once checked


def test_wrong_digits_fail_the_registration_with_a_reason(
    live_stack: LiveStack, bob: Member, media_dir: Path
) -> None:
    check = _register_and_upload(live_stack, bob, media_dir, say="000")

    assert check["status"] == "failed"
    assert check["cameo_status"] == "failed"
    codes = [failure["code"] for failure in check["failures"]]
    assert codes == ["digits_mismatch"], check["failures"]
    assert "we heard" in check["failures"][0]["message"].lower()
    assert FaceVector.objects.filter(cameo__owner=bob.user).count() == 0
    assert _sealed_recordings(check["id"]) == []


def _frames(data: bytes, every: int = 6) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [
            frame.to_ndarray(format="rgb24")
            for index, frame in enumerate(container.decode(video=0)) if index % every == 0
        ]


def test_characters_over_v1_and_their_tags(
    live_stack: LiveStack, alice: Member, charlie: Member, media_dir: Path
) -> None:
    alice_sdk, charlie_sdk = sdk(live_stack.url, alice.key), sdk(live_stack.url, charlie.key)
    clip = still_clip(media_dir, skimage.data.chelsea())

    with clip.open("rb") as video:
        character = alice_sdk.videos.create_character(name="Mr Whiskers", video=video)

    assert character.id is not None and character.id.startswith("char_")
    assert character.name == "Mr Whiskers"
    assert alice_sdk.videos.get_character(character.id).name == "Mr Whiskers"
    with pytest.raises(openai.NotFoundError):
        charlie_sdk.videos.get_character(character.id)

    video = alice_sdk.videos.create_and_poll(
        prompt=f"@mr_whiskers chasing a laser dot, then @{character.id} naps", seconds="4",
        size="720x1280", poll_interval_ms=300,
    )
    assert video.status == "completed", video.error
    with pytest.raises(openai.PermissionDeniedError) as refused:
        charlie_sdk.videos.create(prompt="@mr_whiskers on the moon")
    assert refused.value.code == "cameo_permission_denied"
    assert CameoEvent.objects.filter(
        cameo_id=character.id, kind=CameoEvent.Kind.USE_REFUSED, actor=charlie.user
    ).count() == 1


def test_a_character_clip_showing_a_person_is_refused(
    live_stack: LiveStack, alice: Member, media_dir: Path
) -> None:
    clip = still_clip(media_dir, astronaut())

    with clip.open("rb") as video, pytest.raises(openai.UnprocessableEntityError) as refused:
        sdk(live_stack.url, alice.key).videos.create_character(name="Not a cat", video=video)

    assert refused.value.code == "character_has_human_face"
    assert Cameo.objects.count() == 0


def test_an_approved_friends_video_shows_the_face_and_a_denied_one_is_refused(
    live_stack: LiveStack, alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    do_decide_access(alice.user, cameo.pk, charlie.user, CameoAccess.Decision.DENIED)
    bob_sdk = sdk(live_stack.url, bob.key)

    started = time.monotonic()
    video = bob_sdk.videos.create_and_poll(
        prompt='@alice waving at the camera, she says "hi bob"', seconds="4",
        size="720x1280", poll_interval_ms=300,
    )
    assert video.status == "completed", video.error
    assert time.monotonic() - started < RENDER_TIMEOUT
    frames = _frames(bob_sdk.videos.download_content(video.id).read())
    engine = get_engine()
    reference = FaceVector.objects.filter(cameo=cameo).first()
    assert reference is not None
    found = 0
    for frame in frames:
        for face in engine.detect(frame):
            distance = float(np.linalg.norm(
                engine.embed(frame, face).vector - np.asarray(reference.embedding)
            ))
            if distance <= engine.match_threshold:
                found += 1
                break
    assert found >= len(frames) // 2, f"alice's face in {found} of {len(frames)} frames"

    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(live_stack.url, charlie.key).videos.create(prompt="@alice waving")
    assert refused.value.code == "cameo_permission_denied"
    attempts = CameoEvent.objects.filter(cameo=cameo).values_list("kind", "actor__handle")
    assert ("use_allowed", "bob") in list(attempts)
    assert ("use_refused", "charlie") in list(attempts)
