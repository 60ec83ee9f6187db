from django.apps import AppConfig


class CameosConfig(AppConfig):
    """Likeness registration, consent and the face engine: built in a later stage."""

    name = "cameos"
