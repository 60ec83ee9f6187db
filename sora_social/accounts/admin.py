from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from sora_social.accounts.models import ApiKey, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("handle",)
    list_display = ("handle", "display_name", "email", "is_staff", "date_joined")
    search_fields = ("handle", "display_name", "email")
    fieldsets = (
        (None, {"fields": ("handle", "password")}),
        ("Profile", {"fields": ("display_name", "email", "bio", "avatar", "birth_date")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("handle", "password1", "password2")}),
    )
    list_filter = ("is_staff", "is_active")
    filter_horizontal = ("groups",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "kind", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "secret_hash", "created_at", "last_used_at")
    list_filter = ("kind",)
