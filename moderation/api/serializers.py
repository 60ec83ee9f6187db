from __future__ import annotations

from rest_framework import serializers

from moderation.models import MAX_DETAILS_CHARACTERS, Report
from sora_social.notifications.api.serializers import StrictSerializer

REASONS = ", ".join(Report.Reason.values)


class ReportVideoSerializer(StrictSerializer):
    reason = serializers.ChoiceField(
        choices=Report.Reason.choices,
        error_messages={"invalid_choice": f'"{{input}}" is not a reason; use one of {REASONS}.'},
    )
    details = serializers.CharField(
        max_length=MAX_DETAILS_CHARACTERS,
        allow_blank=True,
        required=False,
        default="",
        help_text="What is wrong, in your words.",
    )


class ReportSerializer(serializers.ModelSerializer):
    video_id = serializers.CharField(source="video_id_text")

    class Meta:
        model = Report
        fields = ("id", "video_id", "reason", "details", "status", "created_at", "resolved_at")
        read_only_fields = fields
