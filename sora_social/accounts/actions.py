"""Writes for accounts and credentials. Views call these; nothing else writes these models."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound

from sora_social.accounts.models import ApiKey, Block, Follow, User

KEY_PREFIX = "sk-ss-"
# A key's last use is written at most this often, so authentication stays a pure read.
LAST_USED_RESOLUTION = datetime.timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # shown once to the caller, never stored


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def do_create_user(
    *,
    handle: str,
    password: str | None,
    email: str = "",
    display_name: str = "",
    birth_date: datetime.date | None = None,
) -> User:
    return User.objects.create_user(
        handle,
        password,
        email=email,
        display_name=display_name or handle,
        birth_date=birth_date,
    )


def do_issue_api_key(user: User, *, name: str = "", kind: str = ApiKey.Kind.API) -> IssuedKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user,
        kind=kind,
        name=name,
        prefix=secret[: len(KEY_PREFIX) + 6],
        secret_hash=hash_secret(secret),
    )
    return IssuedKey(api_key=api_key, secret=secret)


def authenticate_secret(secret: str) -> ApiKey | None:
    """Return the active key for a presented secret (with its user), or None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    try:
        api_key = ApiKey.objects.select_related("user").get(
            secret_hash=hash_secret(secret), revoked_at__isnull=True, user__is_active=True
        )
    except ApiKey.DoesNotExist:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def access_api_key(user: User, key_id: int) -> ApiKey:
    """Fetch one of the user's own keys; anyone else's is NotFound."""
    api_key = ApiKey.objects.filter(user=user, pk=key_id).first()
    if api_key is None:
        raise NotFound("No such API key.")
    return api_key


def do_revoke_api_key(api_key: ApiKey) -> None:
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    api_key.refresh_from_db(fields=["revoked_at"])


def do_update_profile(user: User, **fields: object) -> User:
    for name, value in fields.items():
        setattr(user, name, value)
    user.save(update_fields=list(fields))
    return user


def access_user_by_handle(handle: str) -> User:
    """An active user by @handle (with or without the '@'); NotFound otherwise."""
    user = User.objects.filter(handle=handle.lower().lstrip("@"), is_active=True).first()
    if user is None:
        raise NotFound(f"No user found with handle '{handle}'.")
    return user


def _check_not_self(user: User, other: User, verb: str) -> None:
    if user.pk == other.pk:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({"handle": [f"You can't {verb} yourself."]}, code="self")


def do_follow(follower: User, followee: User) -> Follow:
    _check_not_self(follower, followee, "follow")
    follow, _created = Follow.objects.get_or_create(follower=follower, followee=followee)
    return follow


def do_unfollow(follower: User, followee: User) -> None:
    Follow.objects.filter(follower=follower, followee=followee).delete()


def do_block(blocker: User, blocked: User) -> Block:
    """Block someone: they can no longer use the blocker's cameos, and stop following them."""
    _check_not_self(blocker, blocked, "block")
    with transaction.atomic():
        block, _created = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
        Follow.objects.filter(follower=blocked, followee=blocker).delete()
    return block


def do_unblock(blocker: User, blocked: User) -> None:
    Block.objects.filter(blocker=blocker, blocked=blocked).delete()
