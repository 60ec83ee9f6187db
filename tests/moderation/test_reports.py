"""Reporting a video: who may (whoever can see it), what is kept, and the reporter's own list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from cameos.actions.owner import do_decide_access
from cameos.models import Cameo, CameoAccess
from generation.actions.requests import GenerationRequest, check_and_request_generation
from generation.models import VideoJob
from moderation.actions import do_report_video
from moderation.models import Report
from tests.cameos.cameos import registered_cameo
from tests.conftest import Member

pytestmark = pytest.mark.django_db



def _completed_video(member: Member, prompt: str = "a lighthouse at dusk") -> VideoJob:
    job, created = check_and_request_generation(
        member.user,
        GenerationRequest(prompt=prompt, model="sora-2", seconds=4, width=720, height=1280),
    )
    assert created
    VideoJob.objects.filter(pk=job.pk).update(status=VideoJob.Status.COMPLETED)
    return VideoJob.objects.get(pk=job.pk)


def _bobs_video_with_alice(alice: Member, bob: Member) -> VideoJob:
    """Bob's completed video tagging alice's cameo, which she approved him to use."""
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    return _completed_video(bob, "@alice waving at the camera")


def _report(member: Member, video_id: str, **body: Any) -> Any:
    return member.api().post(f"/api/videos/{video_id}/reports", body, format="json")


def test_the_author_can_report_their_own_video(bob: Member) -> None:
    video = _completed_video(bob)

    response = _report(bob, video.pk, reason="violence", details="It went too far.")

    assert response.status_code == 201, response.content
    body = response.json()
    report = Report.objects.get()
    assert body == {
        "id": report.pk,
        "video_id": video.pk,
        "reason": "violence",
        "details": "It went too far.",
        "status": "open",
        "created_at": body["created_at"],
        "resolved_at": None,
    }
    assert report.id.startswith("report_")
    assert report.reporter == bob.user
    assert report.video == video
    assert report.video_id_text == video.pk


def test_a_person_in_the_video_can_report_it_as_not_them(alice: Member, bob: Member) -> None:
    video = _bobs_video_with_alice(alice, bob)

    response = _report(alice, video.pk, reason="not_me")

    assert response.status_code == 201, response.content
    assert response.json()["details"] == ""
    report = Report.objects.get()
    assert (report.reporter, report.video, report.reason) == (alice.user, video, "not_me")


def test_a_stranger_gets_not_found_and_nothing_is_created(
    alice: Member, bob: Member, charlie: Member
) -> None:
    video = _bobs_video_with_alice(alice, bob)

    response = _report(charlie, video.pk, reason="harassment")

    assert response.status_code == 404
    unknown = _report(charlie, "video_doesnotexist", reason="harassment")
    assert response.json()["error"]["code"] == unknown.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"] == f"No video found with id '{video.pk}'."
    assert Report.objects.count() == 0


def test_an_unknown_video_is_not_found(bob: Member) -> None:
    response = _report(bob, "video_doesnotexist", reason="other")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found", "message": "No video found with id 'video_doesnotexist'."
    }
    assert Report.objects.count() == 0


def test_a_person_in_a_video_can_report_it_still_being_made_or_withdrawn(
    alice: Member, bob: Member, charlie: Member
) -> None:
    video = _bobs_video_with_alice(alice, bob)
    VideoJob.objects.filter(pk=video.pk).update(status=VideoJob.Status.IN_PROGRESS)

    assert _report(alice, video.pk, reason="harassment").status_code == 201
    VideoJob.objects.filter(pk=video.pk).update(status=VideoJob.Status.COMPLETED,
                                                withdrawn_at=timezone.now())
    assert _report(alice, video.pk, reason="harassment").status_code == 201  # the same report
    assert _report(charlie, video.pk, reason="not_me").status_code == 404
    assert Report.objects.count() == 1


def test_an_unknown_reason_is_refused_and_nothing_is_created(bob: Member) -> None:
    video = _completed_video(bob)

    response = _report(bob, video.pk, reason="spam")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "reason": ['"spam" is not a reason; use one of not_me, harassment, sexual, violence, '
                   "other."]
    }
    assert Report.objects.count() == 0


def test_a_missing_reason_too_long_details_and_unknown_fields_are_refused(bob: Member) -> None:
    video = _completed_video(bob)

    missing = _report(bob, video.pk, details="no reason given")
    too_long = _report(bob, video.pk, reason="other", details="x" * 1001)
    misspelt = _report(bob, video.pk, reason="other", detials="typo")

    assert [response.status_code for response in (missing, too_long, misspelt)] == [400] * 3
    assert missing.json()["error"]["fields"] == {"reason": ["This field is required."]}
    assert too_long.json()["error"]["fields"] == {
        "details": ["Ensure this field has no more than 1000 characters."]
    }
    assert misspelt.json()["error"]["fields"] == {"detials": ["Unknown field."]}
    assert Report.objects.count() == 0


def test_details_of_exactly_the_limit_are_accepted(bob: Member) -> None:
    video = _completed_video(bob)

    assert _report(bob, video.pk, reason="other", details="x" * 1000).status_code == 201


def test_reporting_again_while_open_updates_the_same_report(bob: Member) -> None:
    video = _completed_video(bob)

    first = _report(bob, video.pk, reason="other", details="Something is off.")
    second = _report(bob, video.pk, reason="violence", details="It is violent.")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["created_at"] == first.json()["created_at"]
    report = Report.objects.get()
    assert (report.reason, report.details, report.status) == (
        "violence", "It is violent.", "open"
    )


def test_a_closed_report_does_not_stop_a_new_one(bob: Member) -> None:
    video = _completed_video(bob)
    first = do_report_video(bob.user, video.pk, reason="other", details="")
    Report.objects.filter(pk=first.pk).update(
        status=Report.Status.DISMISSED, resolved_at=timezone.now()
    )

    second = do_report_video(bob.user, video.pk, reason="violence", details="Worse now.")

    assert second.pk != first.pk
    assert Report.objects.filter(status=Report.Status.OPEN).count() == 1
    assert Report.objects.count() == 2


def test_a_report_keeps_the_video_id_after_the_video_is_deleted(bob: Member) -> None:
    video = _completed_video(bob)
    report = do_report_video(bob.user, video.pk, reason="other", details="")

    VideoJob.objects.filter(pk=video.pk).delete()

    report.refresh_from_db()
    assert report.video is None
    assert report.video_id_text == video.pk
    listed = bob.api().get("/api/reports").json()
    assert [item["video_id"] for item in listed["results"]] == [video.pk]


def test_reporting_needs_a_signed_in_user(bob: Member) -> None:
    video = _completed_video(bob)

    response = APIClient().post(
        f"/api/videos/{video.pk}/reports", {"reason": "other"}, format="json"
    )

    assert response.status_code == 401
    assert APIClient().get("/api/reports").status_code == 401
    assert Report.objects.count() == 0


def test_the_list_shows_only_my_reports_newest_first(
    alice: Member, bob: Member, charlie: Member
) -> None:
    video = _bobs_video_with_alice(alice, bob)
    other = _completed_video(bob, "a quiet harbour")
    older = do_report_video(bob.user, video.pk, reason="other", details="")
    newer = do_report_video(bob.user, other.pk, reason="violence", details="")
    do_report_video(alice.user, video.pk, reason="not_me", details="")

    listed = bob.api().get("/api/reports").json()

    assert listed["count"] == 2
    assert [item["id"] for item in listed["results"]] == [newer.pk, older.pk]
    assert charlie.api().get("/api/reports").json()["results"] == []


def test_the_list_is_paginated_and_takes_three_queries(
    bob: Member, django_assert_num_queries: Callable[..., Any]
) -> None:
    for number in range(6):
        video = _completed_video(bob, f"clip number {number}")
        do_report_video(bob.user, video.pk, reason="other", details="")
    client = bob.api()
    client.get("/api/reports")  # records the key's first use, which writes once

    # The API key (with its user), the count, the page.
    with django_assert_num_queries(3):
        response = client.get("/api/reports", {"limit": 4})

    body = response.json()
    assert body["count"] == 6
    assert len(body["results"]) == 4
    assert body["next"] is not None


REPORT_OPERATIONS = {
    ("/api/videos/{video_id}/reports", "post"): {"201", "400", "401", "404"},
    ("/api/reports", "get"): {"200", "401"},
}


def test_both_report_operations_are_described_with_their_errors() -> None:
    schema = APIClient().get("/api/schema", HTTP_ACCEPT="application/json").json()

    described = {
        (path, method): set(operation["responses"])
        for path, operations in schema["paths"].items()
        if path in {"/api/reports", "/api/videos/{video_id}/reports"}
        for method, operation in operations.items()
    }
    assert described == REPORT_OPERATIONS
    for (path, method), statuses in REPORT_OPERATIONS.items():
        for status in statuses - {"200", "201"}:
            error = schema["paths"][path][method]["responses"][status]
            assert error["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ApiError"
            }
    listing = schema["paths"]["/api/reports"]["get"]
    assert {parameter["name"] for parameter in listing["parameters"]} == {"limit", "offset"}


def test_the_database_refuses_a_second_open_report_on_one_video(bob: Member) -> None:
    video = _completed_video(bob)
    do_report_video(bob.user, video.pk, reason="other", details="")

    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(reporter=bob.user, video=video, video_id_text=video.pk,
                              reason=Report.Reason.OTHER)
