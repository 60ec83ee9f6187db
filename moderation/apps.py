from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Prompt policy, output scans and the moderation console: built in a later stage."""

    name = "moderation"
