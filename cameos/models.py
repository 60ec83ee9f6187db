"""Cameos: a person's registered likeness, or a character, that prompts may tag.

Biometric data is minimal and erasable: a verified person cameo keeps a few reference face
crops (encrypted files, `ReferenceImage`) and their embeddings (`FaceVector`, only in the
database). The registration recording is deleted once checked. Revocation and retention erase
both and leave a record without biometric data (the cameo row, its consent and its events).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import VectorField

CAMEO_ID_PREFIX = "cameo_"
CHARACTER_ID_PREFIX = "char_"
MAX_PREFERENCES_CHARACTERS = 300


def new_cameo_id() -> str:
    return CAMEO_ID_PREFIX + uuid.uuid4().hex


def new_character_id() -> str:
    return CHARACTER_ID_PREFIX + uuid.uuid4().hex


class Cameo(models.Model):
    """A likeness that can appear in videos: a verified person, or a character (no liveness)."""

    class Kind(models.TextChoices):
        PERSON = "person"
        CHARACTER = "character"

    class Status(models.TextChoices):
        AWAITING_RECORDING = "awaiting_recording"
        CHECKING = "checking"
        # The face matches another account's cameo: a person decides.
        IN_REVIEW = "in_review"
        VERIFIED = "verified"
        FAILED = "failed"
        REVOKED = "revoked"
        # Unused for CAMEO_RETENTION_MONTHS: biometric data purged, as the notice states.
        EXPIRED = "expired"

    class Audience(models.TextChoices):
        ONLY_ME = "only_me"
        APPROVED = "approved"  # people I approve
        MUTUALS = "mutuals"  # mutual followers (and people I approve)
        EVERYONE = "everyone"

    id = models.CharField(primary_key=True, max_length=40, default=new_cameo_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cameos"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # What prompts tag: a person's cameo has its owner's handle; a character has its own.
    handle = models.CharField(max_length=30)
    name = models.CharField(max_length=80)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.AWAITING_RECORDING
    )
    audience = models.CharField(
        max_length=10, choices=Audience.choices, default=Audience.ONLY_ME
    )
    rules = models.JSONField(default=list, blank=True)  # plain words, see cameos.rules
    preferences = models.CharField(max_length=MAX_PREFERENCES_CHARACTERS, blank=True)
    # The owner approves each video of them (made by someone else) before it can be published
    # or downloaded.
    requires_approval = models.BooleanField(default=False)
    # Set when a check fails: [{"code": ..., "message": ...}], shown to the owner.
    failures = models.JSONField(default=list, blank=True)
    # Which face engine made this cameo's vectors (empty for characters).
    face_engine = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One live tag target per handle; a revoked or expired cameo frees its handle.
            models.UniqueConstraint(
                fields=["handle"],
                condition=~Q(status__in=["revoked", "expired", "failed"]),
                name="cameo_live_handle_unique",
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=Q(kind="person") & ~Q(status__in=["revoked", "expired"]),
                name="cameo_one_live_person_per_owner",
            ),
        ]
        indexes = [models.Index(fields=["owner", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"@{self.handle} ({self.kind}, {self.status})"

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.VERIFIED


class ConsentRecord(models.Model):
    """The owner's explicit agreement to a version of the consent notice."""

    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="consents")
    notice_version = models.CharField(max_length=32)
    agreed_at = models.DateTimeField(default=timezone.now)
    # The client that recorded the agreement: the app's name/version or the browser's agent.
    client = models.CharField(max_length=300)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.cameo_id} agreed to {self.notice_version}"


class Challenge(models.Model):
    """What the person must do on camera: single use, bound to the user, short-lived."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="challenges")
    digits = models.CharField(max_length=8)
    turns = models.JSONField()  # e.g. ["left", "right"]
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"challenge {self.id} for {self.cameo_id}"


class LivenessCheck(models.Model):
    """One uploaded recording being checked on a CPU worker (queue `default`)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="checks")
    challenge = models.OneToOneField(
        Challenge, on_delete=models.CASCADE, related_name="liveness_check"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=40, blank=True)
    is_mirrored = models.BooleanField(default=False)
    # The encrypted upload, deleted once checked (empty afterwards).
    recording = models.CharField(max_length=200, blank=True)
    failures = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["status", "lease_until"],
                name="livenesscheck_active",
                condition=Q(status__in=["queued", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"check {self.id} ({self.status})"


class ReferenceImage(models.Model):
    """A reference face crop (person) or still (character), encrypted in storage."""

    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="references")
    position = models.PositiveSmallIntegerField()
    file = models.CharField(max_length=200)  # storage name of the encrypted PNG
    key_id = models.CharField(max_length=16)  # which encryption key sealed it (rotation)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cameo", "position"], name="reference_position")
        ]

    def __str__(self) -> str:
        return f"{self.cameo_id} reference {self.position}"


class FaceVector(models.Model):
    """A face embedding of a cameo; searched with pgvector, never mixing engines.

    The column is untyped so engines of different dimension share the table; each engine has a
    partial HNSW index on a cast of the column to its dimension (see the migration), and every
    query casts and filters the same way (`cameos.actions.search`).
    """

    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="face_vectors")
    reference = models.OneToOneField(
        ReferenceImage, null=True, on_delete=models.CASCADE, related_name="face_vector"
    )
    engine = models.CharField(max_length=64)
    dimension = models.PositiveSmallIntegerField()
    embedding = VectorField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["engine", "cameo"])]

    def __str__(self) -> str:
        return f"{self.cameo_id} {self.engine}/{self.dimension}"


class CameoAccess(models.Model):
    """The owner's decision about one person: approved (may use) or denied (may not)."""

    class Decision(models.TextChoices):
        APPROVED = "approved"
        DENIED = "denied"

    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="access")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cameo", "user"], name="cameo_access_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.decision} for {self.cameo_id}"


class CameoEvent(models.Model):
    """The consent audit trail: written in the same transaction as what it records.

    Refused attempts are recorded too (in their own transaction, since the refused request
    itself changes nothing).
    """

    class Kind(models.TextChoices):
        CONSENT_GIVEN = "consent_given"
        CHECK_PASSED = "check_passed"
        CHECK_FAILED = "check_failed"
        SENT_TO_REVIEW = "sent_to_review"
        SETTINGS_CHANGED = "settings_changed"
        USE_ALLOWED = "use_allowed"
        USE_REFUSED = "use_refused"
        # The output check found the cameo untagged in a video its author may make.
        APPEARANCE_DETECTED = "appearance_detected"
        # ...or found someone who may be them, for the owner to decide.
        APPEARANCE_UNCERTAIN = "appearance_uncertain"
        VIDEO_APPROVED = "video_approved"
        VIDEO_DECLINED = "video_declined"
        VIDEO_REMOVED = "video_removed"
        REVOKED = "revoked"
        REVOCATION_COMPLETED = "revocation_completed"
        BIOMETRICS_ERASED = "biometrics_erased"

    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The video concerned, if any: an id, not a key, since a refused request has no row.
    video_id = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=40, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["cameo", "created_at", "id"])]

    def __str__(self) -> str:
        return f"{self.cameo_id} {self.kind}"


class Appearance(models.Model):
    """One (video, cameo): how the cameo came to be in it and who decided what."""

    class Source(models.TextChoices):
        TAGGED = "tagged"
        DETECTED = "detected"

    class ConsentDecision(models.TextChoices):
        ALLOWED = "allowed"
        REFUSED = "refused"

    class OwnerDecision(models.TextChoices):
        NONE = "none"
        # The video is held until the owner approves (their setting, or an uncertain match).
        PENDING = "pending"
        APPROVED = "approved"
        DECLINED = "declined"
        REMOVED = "removed"

    video = models.ForeignKey(
        "generation.VideoJob", on_delete=models.CASCADE, related_name="appearances"
    )
    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="appearances")
    source = models.CharField(max_length=10, choices=Source.choices)
    # Where the tag was in the prompt (1-based); null when detected.
    tag_position = models.PositiveSmallIntegerField(null=True, blank=True)
    consent_decision = models.CharField(max_length=10, choices=ConsentDecision.choices)
    consent_reason = models.CharField(max_length=40, blank=True)
    owner_decision = models.CharField(
        max_length=10, choices=OwnerDecision.choices, default=OwnerDecision.NONE
    )
    # What the output check saw: the face's nearest distance to the cameo's references (the
    # engine's metric), and where in the video it was first seen. Null: not (yet) found.
    distance = models.FloatField(null=True, blank=True)
    first_seen_seconds = models.FloatField(null=True, blank=True)
    # Between the engine's match and non-match thresholds: maybe them, the owner decides.
    is_uncertain = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "cameo"], name="appearance_once")
        ]
        indexes = [models.Index(fields=["cameo", "created_at"])]

    def __str__(self) -> str:
        return f"{self.cameo_id} in {self.video_id} ({self.source})"


class DeletionReceipt(models.Model):
    """What a revocation erased and withdrew, and when: given to the owner, kept without
    biometric data."""

    cameo = models.OneToOneField(Cameo, on_delete=models.CASCADE, related_name="receipt")
    requested_at = models.DateTimeField(default=timezone.now)
    biometrics_erased_at = models.DateTimeField(null=True, blank=True)
    # When the cascade last finished a batch: one that stops moving lost its worker.
    progressed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # {"reference_images": [{"position", "created_at"}], "face_vectors": [{"engine",
    #  "dimension", "created_at"}], "recordings": n, "counts": {...}}: what was erased, not
    #  the data.
    erased = models.JSONField(default=dict)
    videos_withdrawn = models.JSONField(default=list)  # video ids
    jobs_cancelled = models.JSONField(default=list)  # video ids

    def __str__(self) -> str:
        return f"deletion receipt of {self.cameo_id}"
