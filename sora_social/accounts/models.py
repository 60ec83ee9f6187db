from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

HANDLE_PATTERN = r"^[a-z0-9_][a-z0-9_.]{1,28}[a-z0-9_]$"
ADULT_AGE_YEARS = 18


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(
        self, handle: str, password: str | None = None, **fields: object
    ) -> User:
        user = self.model(handle=handle.lower(), **fields)
        user.set_password(password)  # None gives an unusable password (API-key-only accounts)
        user.save(using=self._db)
        return user

    def create_superuser(self, handle: str, password: str | None = None, **fields: object) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(handle, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person on the service; `handle` is the public @name and the login name."""

    handle = models.CharField(
        max_length=30,
        unique=True,
        validators=[
            RegexValidator(
                HANDLE_PATTERN,
                "A handle is 3-30 lowercase letters, digits, '_' or '.', "
                "not starting or ending with '.'.",
            )
        ],
    )
    email = models.EmailField(blank=True)
    display_name = models.CharField(max_length=80, blank=True)
    bio = models.CharField(max_length=500, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    # Kept so minors can be treated differently (cameo permissions, feed) in later stages.
    birth_date = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "handle"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return f"@{self.handle}"

    @property
    def is_minor(self) -> bool:
        if self.birth_date is None:
            return False
        today = timezone.now().date()
        born = self.birth_date
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return age < ADULT_AGE_YEARS


class ApiKey(models.Model):
    """A bearer credential. Only a SHA-256 of the secret is stored; the secret is shown once.

    `kind` separates keys a developer creates for /v1 from the tokens the mobile app gets at
    login, so one mechanism authenticates both while each can be listed and revoked apart.
    """

    class Kind(models.TextChoices):
        API = "api", "API key"
        SESSION = "session", "App session"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.API)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class Follow(models.Model):
    """`follower` follows `followee`; two follows in opposite directions make mutuals."""

    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="following")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="followers")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_once"),
            models.CheckConstraint(
                condition=~models.Q(follower=models.F("followee")), name="follow_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.follower_id} follows {self.followee_id}"


class Block(models.Model):
    """`blocker` blocked `blocked`: never allowed to use the blocker's cameos, whatever else."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once"),
            models.CheckConstraint(
                condition=~models.Q(blocker=models.F("blocked")), name="block_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocked {self.blocked_id}"
