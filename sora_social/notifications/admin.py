from django.contrib import admin

from sora_social.admin_helpers import ReadOnlyModelAdmin
from sora_social.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyModelAdmin):
    """Read-only: notifications are written by the actions that cause them."""

    list_display = ("id", "recipient", "kind", "title", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("recipient__handle", "title")
    list_select_related = ("recipient",)
    ordering = ("-id",)
