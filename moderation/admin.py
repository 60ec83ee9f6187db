from django.contrib import admin

from moderation.models import Report
from sora_social.admin_helpers import ReadOnlyModelAdmin


@admin.register(Report)
class ReportAdmin(ReadOnlyModelAdmin):
    """Read-only until the moderation console: reports change through actions."""

    list_display = ("id", "video_id_text", "reporter", "reason", "status", "created_at",
                    "resolved_at")
    list_filter = ("status", "reason")
    search_fields = ("video_id_text", "reporter__handle", "details")
    list_select_related = ("reporter",)
    ordering = ("-created_at",)
