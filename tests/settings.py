"""Test settings: the production settings module, pointed at a var/ of its own.

The embedded PostgreSQL (with pgvector) and Redis used by tests live under var/test, apart
from a developer's `make run` data; with REDIS_URL set (as CI does) that Redis is used instead.
"""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("VAR_DIR", str(_ROOT / "var" / "test"))
os.environ.setdefault("EMBEDDED_REDIS_PORT", "6391")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sora_social.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
