"""Reports: a person who may see a video tells the moderators something is wrong with it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

REPORT_ID_PREFIX = "report_"
MAX_DETAILS_CHARACTERS = 1000


def new_report_id() -> str:
    return REPORT_ID_PREFIX + uuid.uuid4().hex


class ReportReason(models.TextChoices):
    NOT_ME = "not_me", "This isn't me / uses my likeness"
    HARASSMENT = "harassment", "Harassment or bullying"
    SEXUAL = "sexual", "Sexual content"
    VIOLENCE = "violence", "Violence"
    OTHER = "other", "Something else"


class ReportStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


class Report(models.Model):
    """At most one open report per reporter and video: reporting again while it is open
    updates it (`do_report_video`); once a moderator closes it, a new report may be made."""

    Reason = ReportReason
    Status = ReportStatus

    id = models.CharField(primary_key=True, max_length=40, default=new_report_id, editable=False)
    # A report outlives its reporter's account: what it says about a video still needs a look.
    # The reporter-first index below serves the foreign key's lookups too.
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_index=False,
    )
    # The link lets the console join the video's state; the text keeps which video it was
    # after the row is gone (its author's account deleted), and holds the uniqueness rule.
    video = models.ForeignKey(
        "generation.VideoJob", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    video_id_text = models.CharField(max_length=40)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    details = models.CharField(max_length=MAX_DETAILS_CHARACTERS, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["reporter", "-created_at"], name="report_reporter_newest"),
            # The console's queue: open reports, oldest first.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status=ReportStatus.OPEN),
                name="report_open_oldest",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["reporter", "video_id_text"],
                condition=models.Q(status=ReportStatus.OPEN),
                name="report_one_open_per_reporter_and_video",
            ),
            models.CheckConstraint(
                condition=models.Q(reason__in=ReportReason.values),
                name="report_reason_is_known",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status=ReportStatus.OPEN, resolved_at__isnull=True)
                    | models.Q(
                        status__in=[ReportStatus.RESOLVED, ReportStatus.DISMISSED],
                        resolved_at__isnull=False,
                    )
                ),
                name="report_closed_when_resolved",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} report on {self.video_id_text} ({self.status})"
