"""The one visibility rule and its queryset twin agree on every kind of viewer and video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cameos.actions.appearances import do_remove_appearance
from cameos.actions.owner import do_decide_access
from cameos.models import Appearance, Cameo, CameoAccess
from generation.actions.output import place_hold
from generation.models import VideoJob
from generation.visibility import VideoAccess, video_access, watchable_videos
from tests.cameos.cameos import registered_cameo
from tests.cameos.videos import passed_without_rendering, request_video
from tests.conftest import Member

pytestmark = pytest.mark.django_db


def test_video_access_and_watchable_videos_agree(
    alice: Member, bob: Member, charlie: Member, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    with django_capture_on_commit_callbacks(execute=True):
        made = passed_without_rendering(request_video(bob, "@alice made"), tmp_path)
        held = passed_without_rendering(request_video(bob, "@alice held"), tmp_path)
        removed = passed_without_rendering(request_video(bob, "@alice removed"), tmp_path)
        plain = passed_without_rendering(request_video(bob, "nobody"), tmp_path)
        queued = request_video(bob, "@alice queued")
        place_hold(held, kind="test", reference="1")
        do_remove_appearance(alice.user, Appearance.objects.get(video=removed).pk)
    videos = {"made": made, "held": held, "removed": removed, "plain": plain, "queued": queued}
    expected = {
        # bob is the author; alice appears in the tagged ones; charlie is a stranger.
        "bob": {"made": "WATCH", "held": "METADATA", "removed": "METADATA", "plain": "WATCH",
                "queued": "METADATA"},
        "alice": {"made": "WATCH", "held": "WATCH", "removed": "NONE", "plain": "NONE",
                  "queued": "NONE"},
        "charlie": {name: "NONE" for name in videos},
    }

    for member in (alice, bob, charlie):
        handle = member.user.handle
        seen = {name: video_access(member.user, VideoJob.objects.get(pk=video.pk)).name
                for name, video in videos.items()}
        assert seen == expected[handle], handle
        watchable = set(watchable_videos(member.user).values_list("pk", flat=True))
        assert watchable == {video.pk for name, video in videos.items()
                             if seen[name] == VideoAccess.WATCH.name}, handle
