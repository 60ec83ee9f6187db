"""Encryption at rest of a cameo's stored media (reference crops, character stills).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, with every key of
`settings.CAMEO_ENCRYPTION_KEYS`: the first seals, all of them open, so keys rotate without
downtime (see `manage.py rotate_cameo_keys`). Embeddings are not files: they live only in the
database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


class SealedFileUnreadable(Exception):
    """No configured key opens the file (a key was dropped before rotation finished)."""


def key_id(key: str) -> str:
    """A short, non-secret name of a key, stored beside what it sealed."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@lru_cache(maxsize=4)
def _keys(keys: tuple[str, ...]) -> tuple[MultiFernet, str]:
    if not keys:
        raise ImproperlyConfigured("CAMEO_ENCRYPTION_KEYS is empty")
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except ValueError:
        raise ImproperlyConfigured(
            "CAMEO_ENCRYPTION_KEYS must be Fernet keys: urlsafe base64 of 32 random bytes "
            '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key())")'
        ) from None
    return MultiFernet(fernets), key_id(keys[0])


def _current() -> tuple[MultiFernet, str]:
    return _keys(tuple(settings.CAMEO_ENCRYPTION_KEYS))


def current_key_id() -> str:
    return _current()[1]


def seal(data: bytes) -> tuple[bytes, str]:
    """Encrypt with the current key; returns (token, key id)."""
    multi, current = _current()
    return multi.encrypt(data), current


def open_sealed(token: bytes) -> bytes:
    try:
        return _current()[0].decrypt(token)
    except InvalidToken:
        raise SealedFileUnreadable("no configured key opens this file") from None


def _unique(name: str) -> str:
    # The media storage overwrites (outputs are idempotent); sealed files never should.
    stem, dot, extension = name.rpartition(".")
    suffix = secrets.token_hex(6)
    return f"{stem}-{suffix}{dot}{extension}" if dot else f"{name}-{suffix}"


def save_sealed(name: str, data: bytes) -> tuple[str, str]:
    """Store `data` encrypted under a unique name made from `name`: (stored name, key id)."""
    token, sealed_with = seal(data)
    return default_storage.save(_unique(name), ContentFile(token)), sealed_with


def read_sealed(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
        return open_sealed(stored.read())


def reseal(name: str) -> tuple[str, str]:
    """Store a copy of a sealed file re-encrypted with the current key: (new name, key id).

    The original stays until the caller has pointed its row at the copy and deleted it, so a
    crash half-way loses nothing.
    """
    multi, current = _current()
    with default_storage.open(name, "rb") as stored:
        token = stored.read()
    try:
        rotated = multi.rotate(token)
    except InvalidToken:
        raise SealedFileUnreadable(f"no configured key opens {name}") from None
    base = re.sub(r"-[0-9a-f]{12}(?=\.sealed$)", "", name)
    return default_storage.save(_unique(base), ContentFile(rotated)), current
