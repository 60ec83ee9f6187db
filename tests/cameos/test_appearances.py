"""Where I appear over REST, and what an owner does from it: approve, decline, remove. A
removed video is gone from every path (the one visibility rule), and so are its remixes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from cameos.actions.owner import do_decide_access
from cameos.models import Appearance, Cameo, CameoAccess, CameoEvent
from generation.models import VideoJob
from generation.storage import OUTPUT_FILES, output_name
from sora_social.notifications.models import Notification
from tests.cameos.cameos import registered_cameo
from tests.cameos.videos import passed_without_rendering, request_video
from tests.conftest import Member

pytestmark = pytest.mark.django_db

APPEARANCE_FIELDS = {
    "id", "video_id", "cameo", "author", "status", "source", "consent_decision",
    "owner_decision", "is_uncertain", "first_seen_seconds", "prompt", "video_created_at",
    "created_at", "decided_at", "video_url", "thumbnail_url",
}



@pytest.fixture
def alice_cameo(alice: Member, bob: Member) -> Cameo:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    return cameo


@pytest.fixture
def made(
    tmp_path: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., VideoJob]:
    def make(member: Member, prompt: str, *, remix_of: VideoJob | None = None) -> VideoJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = request_video(member, prompt, remix_of=remix_of)
            return passed_without_rendering(job, tmp_path)

    return make


def _appearance(video: VideoJob) -> Appearance:
    return Appearance.objects.get(video=video)


def test_the_owner_lists_every_video_she_is_in_with_its_author_and_state(
    alice: Member, bob: Member, alice_cameo: Cameo, made: Callable[..., VideoJob],
    django_assert_num_queries: Any,
) -> None:
    first = made(bob, "@alice rides a bike")
    second = made(bob, "@alice plays chess in the park")
    request_video(bob, "@alice dances")  # still queued
    made(bob, "a red kite, nobody in it")

    with django_assert_num_queries(4):  # key, its last use, count, page (joined)
        response = alice.api().get("/api/appearances")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    listed = body["results"]
    assert set(listed[0]) == APPEARANCE_FIELDS
    assert [item["status"] for item in listed] == ["in_progress", "draft", "draft"]
    assert [item["video_id"] for item in listed[1:]] == [second.pk, first.pk]
    assert listed[1]["author"]["handle"] == "bob"
    assert listed[1]["cameo"] == {"id": alice_cameo.pk, "handle": "alice", "kind": "person"}
    assert listed[1]["source"] == "tagged"
    assert listed[1]["video_url"] == f"/v1/videos/{second.pk}/content"
    assert listed[0]["video_url"] is None
    drafts = alice.api().get("/api/appearances?status=draft").json()
    assert drafts["count"] == 2
    assert alice.api().get("/api/appearances?status=nonsense").status_code == 400


def test_a_stranger_gets_404_on_every_appearance_endpoint(
    alice: Member, bob: Member, charlie: Member, alice_cameo: Cameo,
    made: Callable[..., VideoJob],
) -> None:
    appearance = _appearance(made(bob, "@alice rides a bike"))

    assert charlie.api().get("/api/appearances").json()["count"] == 0
    for path in ("", "/approve", "/decline", "/remove"):
        method = "get" if path == "" else "post"
        response = getattr(charlie.api(), method)(f"/api/appearances/{appearance.pk}{path}")
        assert response.status_code == 404, path
    for path in ("/revoke", "/receipt", "/audit-log"):
        method = "post" if path == "/revoke" else "get"
        response = getattr(charlie.api(), method)(f"/api/cameos/{alice_cameo.pk}{path}")
        assert response.status_code == 404, path
    assert alice.api().get("/api/appearances/not-a-number").status_code == 404
    appearance.refresh_from_db()
    assert appearance.owner_decision == "none"
    assert Cameo.objects.get(pk=alice_cameo.pk).status == "verified"


def test_approving_a_video_that_is_not_waiting_is_a_conflict_and_changes_nothing(
    alice: Member, bob: Member, alice_cameo: Cameo, made: Callable[..., VideoJob],
) -> None:
    appearance = _appearance(made(bob, "@alice rides a bike"))

    for action in ("approve", "decline"):
        response = alice.api().post(f"/api/appearances/{appearance.pk}/{action}")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "nothing_to_approve"
    appearance.refresh_from_db()
    assert appearance.owner_decision == "none"


def _content(member: Member, video: VideoJob) -> int:
    return member.api().get(f"/v1/videos/{video.pk}/content").status_code


def _every_path(member: Member, video: VideoJob) -> dict[str, int]:
    """What each way of reaching a video answers `member`."""
    api = member.api()
    answers = {"retrieve": api.get(f"/v1/videos/{video.pk}").status_code}
    for variant in OUTPUT_FILES:
        answers[variant] = api.get(f"/v1/videos/{video.pk}/content?variant={variant}").status_code
    answers["remix"] = api.post(f"/v1/videos/{video.pk}/remix", {"prompt": "again"},
                                format="json").status_code
    return answers


def test_a_removed_video_and_its_remix_are_gone_from_every_path(
    alice: Member, bob: Member, charlie: Member, alice_cameo: Cameo,
    made: Callable[..., VideoJob], django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    video = made(bob, "@alice rides a bike")
    remix = made(bob, "now at night", remix_of=video)
    kept = made(bob, "@alice plays chess")
    assert _content(bob, kept) == 200
    assert _content(alice, kept) == 200  # she may watch what she is in

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.api().post(f"/api/appearances/{_appearance(video).pk}/remove")

    assert response.status_code == 200
    assert response.json() == {"withdrawn": sorted([video.pk, remix.pk]), "cancelled": []}
    jobs_before = VideoJob.objects.count()
    for gone in (video, remix):
        # Its author learns it was withdrawn; nobody gets its content or remixes it.
        assert _every_path(bob, gone) == {"retrieve": 200, "video": 410, "thumbnail": 410,
                                          "spritesheet": 410, "remix": 410}
        assert _every_path(alice, gone) == {"retrieve": 404, "video": 404, "thumbnail": 404,
                                            "spritesheet": 404, "remix": 404}
        assert _every_path(charlie, gone) == {"retrieve": 404, "video": 404, "thumbnail": 404,
                                              "spritesheet": 404, "remix": 404}
        state = bob.api().get(f"/v1/videos/{gone.pk}").json()
        assert (state["status"], state["error"]["code"]) == ("failed", "video_withdrawn")
        for variant in OUTPUT_FILES:
            assert not default_storage.exists(output_name(gone.pk, variant))
    assert VideoJob.objects.count() == jobs_before  # the remix attempts created nothing
    assert _content(bob, kept) == 200
    listed = {item["video_id"]: item["status"]
              for item in alice.api().get("/api/appearances").json()["results"]}
    assert listed == {video.pk: "removed", remix.pk: "removed", kept.pk: "draft"}
    assert CameoEvent.objects.filter(cameo=alice_cameo, kind="video_removed",
                                     video_id=video.pk).count() == 1
    # One notice per reason: the video removed, and its remix removed with it.
    notices = Notification.objects.filter(recipient=bob.user, kind="video.withdrawn")
    assert sorted((notice.data["code"], notice.data["video_ids"]) for notice in notices) == [
        ("cameo_owner_removed", [video.pk]), ("source_withdrawn", [remix.pk])]
    page = Client()
    page.force_login(bob.user)
    assert page.get(f"/v1/videos/{video.pk}/content").status_code == 410  # the web's session

    again = alice.api().post(f"/api/appearances/{_appearance(video).pk}/remove")
    assert again.json() == {"withdrawn": [], "cancelled": []}


def test_removing_a_video_still_being_made_cancels_it_and_refunds_the_author(
    alice: Member, bob: Member, alice_cameo: Cameo,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = request_video(bob, "@alice dances")

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.api().post(f"/api/appearances/{_appearance(job).pk}/remove")

    assert response.json() == {"withdrawn": [], "cancelled": [job.pk]}
    job.refresh_from_db()
    assert (job.status, job.error_code, job.is_quota_refunded) == (
        "cancelled", "cameo_owner_removed", True)
