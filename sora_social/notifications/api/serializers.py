from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from sora_social.notifications.actions import MAX_NOTIFICATION_ID
from sora_social.notifications.models import Notification

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_IDS_PER_REQUEST = 500


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, rather than silently ignoring a misspelt one."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "kind", "title", "body", "data", "created_at", "read_at")
        read_only_fields = fields
        extra_kwargs = {"data": {"help_text": "Ids of what it is about: video_id, cameo_id, ..."}}


class NotificationListQuerySerializer(StrictSerializer):
    after = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_NOTIFICATION_ID,
        help_text="The last id of the previous page: returns older notifications.",
    )
    limit = serializers.IntegerField(
        required=False, default=DEFAULT_PAGE_SIZE, min_value=1, max_value=MAX_PAGE_SIZE
    )
    unread = serializers.BooleanField(
        required=False, default=False, help_text="Only notifications not read yet."
    )


class NotificationPageSerializer(serializers.Serializer):
    # "data" is declared in __init__: a class attribute would shadow the serializer's own.
    first_id = serializers.IntegerField(allow_null=True)
    last_id = serializers.IntegerField(allow_null=True)
    has_more = serializers.BooleanField()
    unread_count = serializers.IntegerField(help_text="All the user's unread notifications.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["data"] = NotificationSerializer(many=True)


class MarkReadSerializer(StrictSerializer):
    """Either {"ids": [...]} (your own; others' ids change nothing) or {"all": true}."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_NOTIFICATION_ID),
        min_length=1,
        max_length=MAX_IDS_PER_REQUEST,
        required=False,
    )
    all = serializers.BooleanField(required=False, help_text="true: mark every one read.")

    def validate_all(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError("Send true, or leave it out and send ids.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("all" in attrs):
            raise serializers.ValidationError(
                'Send either {"ids": [...]} or {"all": true}.', code="ids_or_all"
            )
        return attrs


class MarkReadResultSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many unread notifications became read.")
    unread_count = serializers.IntegerField()
