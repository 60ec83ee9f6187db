"""Test settings: the production settings module, pointed at a var/ folder of this run's own.

Each test run gets var/test/run-<pid>: its own embedded PostgreSQL (with pgvector) and, unless
REDIS_URL is set (as CI does, to the machine's Redis), its own embedded Redis on a free port.
The test process owns those servers: they stop when it exits, however it exits, and the folder
is removed (see tests/conftest.py). Runs of the suite side by side never share anything.
"""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
TEST_RUNS_DIR = _ROOT / "var" / "test"
os.environ.setdefault("VAR_DIR", str(TEST_RUNS_DIR / f"run-{os.getpid()}"))
os.environ.setdefault("EMBEDDED_REDIS_PORT", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sora_social.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
