"""Reporting videos. The moderation console (deciding reports) comes later."""

from __future__ import annotations

from django.db.models import QuerySet

from cameos.models import Appearance
from generation.models import VideoJob
from generation.visibility import access_video_state
from moderation.models import Report
from sora_social.accounts.models import User


def _reportable(reporter: User, video_id: str) -> VideoJob:
    """A video the reporter may see the state of, or one they appear in, whatever its state
    (a person may report a video of them still being made, or one they removed)."""
    appears = Appearance.objects.filter(video_id=video_id, cameo__owner=reporter).exists()
    if appears:
        return VideoJob.objects.get(pk=video_id)
    return access_video_state(reporter, video_id)


def do_report_video(reporter: User, video_id: str, *, reason: str, details: str = "") -> Report:
    """Report a video `reporter` may see at least the state of (`video_access` METADATA), or
    one their cameo appears in; any other id is NotFound, the same as an id that never was.

    Idempotent: while the reporter's report on this video is open, reporting again updates
    its reason and details and returns the same report (the conditional unique constraint
    makes this hold under concurrent requests too). Once a moderator has closed it, a new
    report is opened.
    """
    job = _reportable(reporter, video_id)
    # Locks the open report and updates it, or inserts one; of two concurrent inserts, the
    # one that loses on the unique constraint reads the winner's row (locked) and updates it.
    report, _ = Report.objects.update_or_create(
        reporter=reporter,
        video_id_text=job.pk,
        status=Report.Status.OPEN,
        defaults={"reason": reason, "details": details},
        create_defaults={"video": job, "reason": reason, "details": details},
    )
    return report


def reports_by(reporter: User) -> QuerySet[Report]:
    """The reporter's own reports, newest first."""
    return Report.objects.filter(reporter=reporter).order_by("-created_at", "-id")
