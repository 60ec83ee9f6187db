from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

VIDEO_ID_PREFIX = "video_"


def new_video_id() -> str:
    return VIDEO_ID_PREFIX + uuid.uuid4().hex


class VideoJob(models.Model):
    """One request to render one video; the row, not the broker, is the truth about it.

    Lifecycle: queued -> in_progress -> completed | failed (| cancelled). An in-progress job
    is first rendered (stage `render`, a GPU worker) and then, once its files are stored,
    checked (stage `output_check`, a CPU worker; generation/output_gate.py). A worker owns an
    in-progress job only while it holds `lease_token` and `lease_until` is in the future.

    A completed video may later be *withdrawn* (by a person in it, a revocation or a
    moderator): its files are deleted and every way of reaching it respects that
    (generation/visibility.py). While it has a `VideoHold`, only the people who may release
    the hold can watch it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Stage(models.TextChoices):
        RENDER = "render"
        OUTPUT_CHECK = "output_check"

    id = models.CharField(primary_key=True, max_length=40, default=new_video_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.RENDER)
    model = models.CharField(max_length=64)
    prompt = models.TextField()
    seconds = models.PositiveSmallIntegerField()
    width = models.PositiveSmallIntegerField()
    height = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField()
    remixed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="remixes"
    )
    input_reference = models.FileField(blank=True, max_length=200)
    # The source's stored video at request time: a remix whose source is deleted before it
    # renders fails clearly instead of silently rendering from nothing.
    remix_source_name = models.CharField(max_length=200, blank=True)

    progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    attempts = models.PositiveSmallIntegerField(default=0)
    check_attempts = models.PositiveSmallIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    dispatched_at = models.DateTimeField(default=timezone.now)

    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    quota_day = models.DateField()
    is_quota_refunded = models.BooleanField(default=False)

    video = models.FileField(blank=True, max_length=200)
    thumbnail = models.FileField(blank=True, max_length=200)
    spritesheet = models.FileField(blank=True, max_length=200)
    render_seconds = models.FloatField(null=True, blank=True)

    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Why, as a code (e.g. `cameo_owner_removed`) and in general terms for the author.
    withdrawal_reason = models.CharField(max_length=40, blank=True)
    withdrawal_message = models.CharField(max_length=300, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "created_at", "id"], name="videojob_user_created"),
            models.Index(
                fields=["status", "lease_until"],
                name="videojob_active_lease",
                condition=Q(status__in=["queued", "in_progress"]),
            ),
            # The reaper's walk over queued jobs in primary-key order (dispatch markers).
            models.Index(fields=["id"], name="videojob_queued", condition=Q(status="queued")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="videojob_unique_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="videojob_progress_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None


class VideoHold(models.Model):
    """Keeps a completed video from its author and the public until released.

    Placed by an output check that needs a person's decision (a cameo owner's per-video
    approval, an uncertain face match, a moderator's review); `reference` says which decision
    (e.g. an appearance id), so each holder releases only its own.
    """

    video = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="holds")
    kind = models.CharField(max_length=40)
    reference = models.CharField(max_length=80)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "kind", "reference"], name="video_hold_once")
        ]

    def __str__(self) -> str:
        return f"{self.video_id} held by {self.kind}:{self.reference}"


class DailyGenerationUsage(models.Model):
    """How many generations a user started on a UTC day; charged and refunded atomically."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="daily_usage_one_row_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day}: {self.used}"
