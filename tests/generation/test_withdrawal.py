"""Withdrawing finished videos: the remixes descending from them follow, their files and holds
go, each author gets one notice per reason, and a batch costs the same queries however many
videos it holds (a revocation withdraws hundreds at a time)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.actions.withdrawal import SOURCE_WITHDRAWN, do_withdraw_videos
from generation.models import VideoHold, VideoJob
from generation.storage import OUTPUT_FILES, output_name
from sora_social.notifications.models import Notification
from tests.cameos.videos import passed_without_rendering, request_video
from tests.conftest import Member

pytestmark = pytest.mark.django_db

CODE = "removed_by_person_in_it"
MESSAGE = "A person who appears in this video asked for it to be removed."


def _finished(member: Member, count: int, folder: Path, *, label: str) -> list[VideoJob]:
    return [passed_without_rendering(request_video(member, f"a kite, {label} {n}"), folder)
            for n in range(count)]


def _withdraw(
    videos: list[VideoJob], capture: Callable[..., Any]
) -> tuple[int, list[str], list[str]]:
    """Queries run (the after-commit work included), and the ids withdrawn and cancelled."""
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        report = do_withdraw_videos([video.pk for video in videos], code=CODE, message=MESSAGE)
    return len(queries), report.withdrawn, report.cancelled


def test_a_batch_costs_the_same_queries_for_twelve_videos_as_for_three(
    alice: Member, bob: Member, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        few = _finished(bob, 3, tmp_path, label="few")
        many = _finished(bob, 12, tmp_path, label="many")
    for video in (few[0], many[0], many[5]):
        VideoHold.objects.create(video=video, kind="cameo_approval", reference=f"hold {video.pk}")

    few_queries, few_withdrawn, _ = _withdraw(few, django_capture_on_commit_callbacks)
    many_queries, many_withdrawn, cancelled = _withdraw(many, django_capture_on_commit_callbacks)

    assert sorted(few_withdrawn) == sorted(video.pk for video in few)
    assert sorted(many_withdrawn) == sorted(video.pk for video in many)
    assert cancelled == []
    assert many_queries == few_queries, (few_queries, many_queries)
    for video in [*few, *many]:
        video.refresh_from_db()
        assert (video.is_withdrawn, video.withdrawal_reason, video.withdrawal_message) == (
            True, CODE, MESSAGE
        )
        assert not any(default_storage.exists(output_name(video.pk, variant))
                       for variant in OUTPUT_FILES)
    assert not VideoHold.objects.exists()
    notices = Notification.objects.filter(recipient=bob.user, kind="video.withdrawn")
    assert sorted(notice.title for notice in notices) == [
        "12 of your videos were removed", "3 of your videos were removed"
    ]
    assert not Notification.objects.filter(recipient=alice.user).exists()


def test_remixes_follow_with_their_own_reason_and_a_second_withdrawal_changes_nothing(
    bob: Member, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        [source, other] = _finished(bob, 2, tmp_path, label="source")
        remix = passed_without_rendering(request_video(bob, "again", remix_of=source),
                                         tmp_path)
        remix_of_remix = passed_without_rendering(
            request_video(bob, "once more", remix_of=remix), tmp_path
        )
        rendering = request_video(bob, "and again", remix_of=source)

    _queries, withdrawn, cancelled = _withdraw([source], django_capture_on_commit_callbacks)

    assert sorted(withdrawn) == sorted([source.pk, remix.pk, remix_of_remix.pk])
    assert cancelled == [rendering.pk]
    reasons = dict(VideoJob.objects.filter(withdrawn_at__isnull=False)
                   .values_list("pk", "withdrawal_reason"))
    assert reasons == {source.pk: CODE, remix.pk: SOURCE_WITHDRAWN,
                       remix_of_remix.pk: SOURCE_WITHDRAWN}
    rendering.refresh_from_db()
    assert (rendering.status, rendering.error_code) == ("cancelled", SOURCE_WITHDRAWN)
    other.refresh_from_db()
    assert not other.is_withdrawn
    assert default_storage.exists(output_name(other.pk, "video"))
    # One notice per kind and reason: the source; the two remixes together; the render.
    notices = {(notice.kind, notice.data["code"]): notice.data["video_ids"]
               for notice in Notification.objects.filter(recipient=bob.user)}
    assert notices == {
        ("video.withdrawn", CODE): [source.pk],
        ("video.withdrawn", SOURCE_WITHDRAWN): sorted([remix.pk, remix_of_remix.pk]),
        ("video.cancelled", SOURCE_WITHDRAWN): [rendering.pk],
    }

    _queries, withdrawn, cancelled = _withdraw([source], django_capture_on_commit_callbacks)

    assert (withdrawn, cancelled) == ([], [])
    assert Notification.objects.filter(recipient=bob.user).count() == len(notices)
