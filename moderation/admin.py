from django.contrib import admin
from django.http import HttpRequest

from moderation.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Read-only until the moderation console: reports change through actions."""

    list_display = ("id", "video_id_text", "reporter", "reason", "status", "created_at",
                    "resolved_at")
    list_filter = ("status", "reason")
    search_fields = ("video_id_text", "reporter__handle", "details")
    list_select_related = ("reporter",)
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
