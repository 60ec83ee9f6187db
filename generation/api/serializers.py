from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

ALLOWED_SECONDS = ("4", "8", "12")
ALLOWED_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
OPENAI_MODELS = (
    "sora-2",
    "sora-2-pro",
    "sora-2-2025-10-06",
    "sora-2-pro-2025-10-06",
    "sora-2-2025-12-08",
)
DEFAULT_MODEL = "sora-2"
CONTENT_VARIANTS = ("video", "thumbnail", "spritesheet")


def allowed_models() -> tuple[str, ...]:
    # The server's own names: the backend it runs, also reachable as "sora-social-<backend>".
    backend = settings.VIDEO_BACKEND
    return (*OPENAI_MODELS, backend, f"sora-social-{backend}")


class VideoCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(trim_whitespace=True)
    model = serializers.CharField(required=False, default=DEFAULT_MODEL)
    seconds = serializers.ChoiceField(choices=ALLOWED_SECONDS, required=False, default="4")
    size = serializers.ChoiceField(choices=ALLOWED_SIZES, required=False, default="720x1280")
    input_reference = serializers.FileField(required=False, allow_empty_file=True)

    def validate_prompt(self, prompt: str) -> str:
        return check_prompt(prompt)

    def validate_model(self, model: str) -> str:
        if model not in allowed_models():
            raise serializers.ValidationError(
                f"Unknown model '{model}'. Use one of: {', '.join(allowed_models())}.",
                code="invalid_model",
            )
        return model

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # The OpenAI API also takes {"image_url"} or {"file_id"} references; this server takes
        # only an uploaded file, and says so rather than silently ignoring the reference.
        keys = list(data.keys()) if hasattr(data, "keys") else []
        reference = data.get("input_reference") if hasattr(data, "get") else None
        is_other_reference = any(key.startswith("input_reference[") for key in keys)
        if is_other_reference or (reference is not None and not hasattr(reference, "read")):
            raise serializers.ValidationError(
                {
                    "input_reference": [
                        "input_reference must be an uploaded image file (multipart); "
                        "image_url and file_id references are not supported."
                    ]
                },
                code="unsupported_reference",
            )
        return super().to_internal_value(data)


class VideoRemixSerializer(serializers.Serializer):
    prompt = serializers.CharField(trim_whitespace=True)

    def validate_prompt(self, prompt: str) -> str:
        return check_prompt(prompt)


def check_prompt(prompt: str) -> str:
    if len(prompt) > settings.MAX_PROMPT_CHARS:
        raise serializers.ValidationError(
            f"The prompt is {len(prompt)} characters long; at most "
            f"{settings.MAX_PROMPT_CHARS} are allowed.",
            code="prompt_too_long",
        )
    if "\x00" in prompt:
        raise serializers.ValidationError("The prompt contains a NUL character.", code="invalid")
    return prompt


class VideoListSerializer(serializers.Serializer):
    after = serializers.CharField(required=False, max_length=40)
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)
    order = serializers.ChoiceField(choices=("asc", "desc"), required=False, default="desc")


class VideoContentSerializer(serializers.Serializer):
    variant = serializers.ChoiceField(choices=CONTENT_VARIANTS, required=False, default="video")
