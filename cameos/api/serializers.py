from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cameos.models import (
    MAX_PREFERENCES_CHARACTERS,
    Cameo,
    CameoAccess,
    CameoEvent,
    Challenge,
    ConsentRecord,
    LivenessCheck,
)
from cameos.rules import MAX_RULE_CHARACTERS, MAX_RULES


class ConsentRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentRecord
        fields = ("notice_version", "agreed_at", "client", "withdrawn_at")


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class CameoSerializer(serializers.ModelSerializer):
    consent = serializers.SerializerMethodField()
    failures = FailureSerializer(many=True, read_only=True)
    rules = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Cameo
        fields = (
            "id", "kind", "handle", "name", "status", "audience", "rules", "preferences",
            "requires_approval", "failures", "consent", "created_at", "verified_at",
            "last_used_at", "revoked_at", "erased_at",
        )

    def get_consent(self, cameo: Cameo) -> dict[str, Any] | None:
        record = cameo.consents.order_by("-agreed_at").first()
        return ConsentRecordSerializer(record).data if record else None


class CameoSettingsSerializer(serializers.Serializer):
    audience = serializers.ChoiceField(choices=Cameo.Audience.choices, required=False)
    rules = serializers.ListField(
        child=serializers.CharField(max_length=MAX_RULE_CHARACTERS, allow_blank=False),
        max_length=MAX_RULES,
        required=False,
    )
    preferences = serializers.CharField(
        max_length=MAX_PREFERENCES_CHARACTERS, allow_blank=True, required=False
    )
    requires_approval = serializers.BooleanField(
        required=False,
        help_text="Approve each video of you that someone else makes before it can be "
                  "published or downloaded.",
    )


class RegistrationSerializer(serializers.Serializer):
    notice_version = serializers.CharField(max_length=32)
    agreed = serializers.BooleanField()

    def validate_agreed(self, agreed: bool) -> bool:
        if not agreed:
            raise serializers.ValidationError(
                "You must agree to the consent notice to register a cameo.", code="consent_required"
            )
        return agreed


class ChallengeSerializer(serializers.ModelSerializer):
    digits = serializers.SerializerMethodField()
    instructions = serializers.SerializerMethodField()

    class Meta:
        model = Challenge
        fields = ("id", "digits", "turns", "expires_at", "instructions")

    def get_digits(self, challenge: Challenge) -> list[str]:
        return list(challenge.digits)

    def get_instructions(self, challenge: Challenge) -> str:
        turns = " then ".join(challenge.turns)
        return (
            f"Record 3 to 10 seconds of video with sound: look at the camera, say the digits "
            f"{' '.join(challenge.digits)} one at a time, and turn your head to your {turns}, "
            "coming back to face the camera after each turn. Only you in the frame."
        )


class RegistrationResponseSerializer(serializers.Serializer):
    cameo = CameoSerializer()
    challenge = ChallengeSerializer()


class RecordingUploadSerializer(serializers.Serializer):
    video = serializers.FileField(allow_empty_file=True)
    # The client recorded through a mirrored preview and saved it mirrored.
    mirrored = serializers.BooleanField(required=False, default=False)


class LivenessCheckSerializer(serializers.ModelSerializer):
    failures = FailureSerializer(many=True, read_only=True)
    cameo_status = serializers.CharField(source="cameo.status", read_only=True)

    class Meta:
        model = LivenessCheck
        fields = (
            "id", "cameo_id", "status", "progress", "stage", "failures", "cameo_status",
            "created_at", "finished_at",
        )


class CameoEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.handle", default=None, read_only=True)

    class Meta:
        model = CameoEvent
        fields = ("id", "kind", "actor", "video_id", "reason", "details", "created_at")


class CameoAccessSerializer(serializers.ModelSerializer):
    handle = serializers.CharField(source="user.handle", read_only=True)

    class Meta:
        model = CameoAccess
        fields = ("handle", "decision", "decided_at")


class AccessDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=CameoAccess.Decision.choices)


class CharacterCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, trim_whitespace=True)
    video = serializers.FileField(allow_empty_file=True)


def character_object(cameo: Cameo) -> dict[str, Any]:
    """A character as the OpenAI Videos API returns it (`create_character`, `get_character`)."""
    return {
        "id": cameo.id,
        "object": "character",
        "created_at": int(cameo.created_at.timestamp()),
        "name": cameo.name,
        "handle": cameo.handle,
        "status": cameo.status,
    }
