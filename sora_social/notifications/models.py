"""What a person is told: a video with their face appeared, their video was withdrawn, ..."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from sora_social.accounts.models import User

# Kinds are named by the apps that send them ("appearance.new", "video.withdrawn"), so they are
# a checked shape rather than a fixed list: lowercase words joined by '.', '_' or '-'.
KIND_PATTERN = r"^[a-z0-9]+([._-][a-z0-9]+)*$"
KIND_MAX_LENGTH = 64
TITLE_MAX_LENGTH = 200


class Notification(models.Model):
    # The recipient-first indexes below serve the foreign key's lookups too.
    recipient = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    kind = models.CharField(max_length=KIND_MAX_LENGTH)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    body = models.TextField(blank=True)
    # Ids of what it is about (video_id, appearance_id, cameo_id), for the client to link to.
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_newest"),
            # Unread ones only: the unread count and the unread filter read this small index.
            models.Index(
                fields=["recipient", "-id"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread_newest",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__regex=KIND_PATTERN), name="notification_kind_is_slug"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None
