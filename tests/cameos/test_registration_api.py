"""Registering a cameo over REST: consent, the challenge, the upload and its refusals, and the
owner's view. The check itself runs on a worker (test_registration_flow.py)."""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from cameos.consent import NOTICE_VERSION
from cameos.models import Cameo, CameoAccess, CameoEvent, Challenge, ConsentRecord, LivenessCheck
from tests.cameos.cameos import registered_cameo
from tests.cameos.recordings import RecordingSpec, build_recording
from tests.conftest import Member

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_recording(tmp_path_factory.mktemp("recordings"), RecordingSpec(seconds=3.5))


def _client(member: Member) -> APIClient:
    client = APIClient(HTTP_X_CLIENT="sora-social-ios/1.4")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {member.key}")
    return client


def _start(member: Member) -> dict[str, Any]:
    response = _client(member).post(
        "/api/cameos/registrations", {"notice_version": NOTICE_VERSION, "agreed": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def _upload(member: Member, challenge_id: str, data: bytes, name: str = "clip.mp4") -> Any:
    upload = io.BytesIO(data)
    upload.name = name
    return _client(member).post(
        f"/api/cameos/registrations/{challenge_id}/recording",
        {"video": upload, "mirrored": "false"},
        format="multipart",
    )


def _stored_files() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def test_anyone_can_read_the_consent_notice() -> None:
    response = APIClient().get("/api/cameos/consent-notice")

    assert response.status_code == 200
    notice = response.json()
    assert notice["version"] == NOTICE_VERSION
    text = " ".join(section["text"] for section in notice["sections"])
    assert f"{settings.CAMEO_RETENTION_MONTHS} months" in text
    assert "revoke" in text.lower()


def test_registration_records_consent_and_issues_a_challenge(alice: Member) -> None:
    body = _start(alice)

    challenge = body["challenge"]
    assert len(challenge["digits"]) == 3
    assert len(set(challenge["digits"])) == 3
    assert sorted(challenge["turns"]) == ["left", "right"]
    assert body["cameo"]["status"] == "awaiting_recording"
    assert body["cameo"]["handle"] == "alice"
    consent = ConsentRecord.objects.get()
    assert (consent.notice_version, consent.client) == (NOTICE_VERSION, "sora-social-ios/1.4")
    assert body["cameo"]["consent"]["notice_version"] == NOTICE_VERSION
    assert CameoEvent.objects.filter(kind=CameoEvent.Kind.CONSENT_GIVEN).count() == 1


def test_registration_needs_explicit_agreement_to_the_current_notice(alice: Member) -> None:
    refused = _client(alice).post(
        "/api/cameos/registrations", {"notice_version": NOTICE_VERSION, "agreed": False},
        format="json",
    )
    outdated = _client(alice).post(
        "/api/cameos/registrations", {"notice_version": "2020-01-01", "agreed": True},
        format="json",
    )

    assert refused.status_code == 400
    assert outdated.status_code == 400
    assert outdated.json()["error"]["code"] == "consent_notice_outdated"
    assert Cameo.objects.count() == 0
    assert ConsentRecord.objects.count() == 0


def test_a_new_challenge_retires_the_previous_one(alice: Member, recording: Path) -> None:
    first = _start(alice)["challenge"]["id"]
    _start(alice)

    response = _upload(alice, first, recording.read_bytes())

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "challenge_expired"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "gray").save(buffer, format="PNG")
    return buffer.getvalue()


def _audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48_000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 48_000 * 4), dtype=np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = 48_000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("empty", "recording_not_a_video"),
        ("text", "recording_not_a_video"),
        ("png-renamed-mp4", "recording_still_image"),
        ("audio-only", "recording_no_video"),
        ("truncated", "recording_truncated"),
    ],
)
def test_a_bad_upload_is_refused_and_nothing_is_stored(
    alice: Member, recording: Path, kind: str, code: str
) -> None:
    data = {
        "empty": lambda: b"",
        "text": lambda: b"hello, this is a text file\n" * 40,
        "png-renamed-mp4": _png,
        "audio-only": _audio_only,
        "truncated": lambda: recording.read_bytes()[: recording.stat().st_size // 2],
    }[kind]()
    challenge_id = _start(alice)["challenge"]["id"]
    files_before = _stored_files()

    response = _upload(alice, challenge_id, data)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == code
    assert _stored_files() == files_before
    assert LivenessCheck.objects.count() == 0
    assert Challenge.objects.get(pk=challenge_id).used_at is None
    assert Cameo.objects.get().status == Cameo.Status.AWAITING_RECORDING


def test_a_recording_spends_the_challenge_once(alice: Member, recording: Path) -> None:
    challenge_id = _start(alice)["challenge"]["id"]

    accepted = _upload(alice, challenge_id, recording.read_bytes())
    again = _upload(alice, challenge_id, recording.read_bytes())

    assert accepted.status_code == 202, accepted.content
    assert accepted.json()["status"] == "queued"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "challenge_used"
    check = LivenessCheck.objects.get()
    assert Cameo.objects.get().status == Cameo.Status.CHECKING
    stored = Path(settings.MEDIA_ROOT) / check.recording
    assert stored.read_bytes() != recording.read_bytes()  # sealed, not the plain upload
    assert recording.read_bytes()[:1000] not in stored.read_bytes()


def test_an_expired_challenge_is_refused(alice: Member, recording: Path) -> None:
    challenge_id = _start(alice)["challenge"]["id"]
    Challenge.objects.filter(pk=challenge_id).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    response = _upload(alice, challenge_id, recording.read_bytes())

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "challenge_expired"
    assert LivenessCheck.objects.count() == 0


def test_strangers_get_404_for_everything_of_a_cameo(
    alice: Member, charlie: Member, recording: Path
) -> None:
    challenge_id = _start(alice)["challenge"]["id"]
    check_id = _upload(alice, challenge_id, recording.read_bytes()).json()["id"]
    cameo_id = Cameo.objects.get().pk
    stranger = _client(charlie)

    responses = [
        stranger.get(f"/api/cameos/{cameo_id}"),
        stranger.patch(f"/api/cameos/{cameo_id}", {"audience": "everyone"}, format="json"),
        stranger.get(f"/api/cameos/{cameo_id}/events"),
        stranger.get(f"/api/cameos/{cameo_id}/access"),
        stranger.put(f"/api/cameos/{cameo_id}/access/charlie", {"decision": "approved"},
                     format="json"),
        stranger.get(f"/api/cameos/checks/{check_id}"),
        _upload(charlie, challenge_id, recording.read_bytes()),
    ]

    assert [response.status_code for response in responses] == [404] * len(responses)
    assert Cameo.objects.get().audience == Cameo.Audience.ONLY_ME
    assert CameoAccess.objects.count() == 0
    assert APIClient().get(f"/api/cameos/{cameo_id}").status_code == 401


def test_the_owner_chooses_audience_rules_and_people_and_sees_it_all(
    alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user)
    owner = _client(alice)

    changed = owner.patch(
        f"/api/cameos/{cameo.pk}",
        {"audience": "approved", "rules": ["  no political   content ", "no alcohol"],
         "preferences": "always wearing my red cap"},
        format="json",
    )
    approved = owner.put(f"/api/cameos/{cameo.pk}/access/@bob", {"decision": "approved"},
                         format="json")
    denied = owner.put(f"/api/cameos/{cameo.pk}/access/charlie", {"decision": "denied"},
                       format="json")
    too_many = owner.patch(f"/api/cameos/{cameo.pk}", {"rules": ["no x"] * 11}, format="json")

    assert changed.status_code == 200, changed.content
    assert changed.json()["rules"] == ["no political content", "no alcohol"]
    assert changed.json()["audience"] == "approved"
    assert (approved.status_code, denied.status_code) == (204, 204)
    assert too_many.status_code == 400
    access = owner.get(f"/api/cameos/{cameo.pk}/access").json()
    assert [(entry["handle"], entry["decision"]) for entry in access] == [
        ("bob", "approved"), ("charlie", "denied")
    ]
    events = owner.get(f"/api/cameos/{cameo.pk}/events").json()
    kinds = [event["kind"] for event in events["results"]]
    assert kinds.count("settings_changed") == 3
    assert kinds[-2:] == ["check_passed", "consent_given"]
    assert events["count"] == 5
