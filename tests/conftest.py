"""The fixed cast (alice, bob, charlie) and the live stack: a real web server process and real
Celery worker processes against the test database (PostgreSQL + pgvector) and Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from sora_social.accounts.actions import do_create_user, do_issue_api_key
from sora_social.accounts.models import User
from sora_social.redis import redis_client

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Member:
    user: User
    key: str


def _member(handle: str) -> Member:
    user = do_create_user(handle=handle, password="correct horse battery staple")
    return Member(user=user, key=do_issue_api_key(user, name="tests").secret)


@pytest.fixture
def alice(db: None) -> Member:
    return _member("alice")


@pytest.fixture
def bob(db: None) -> Member:
    return _member("bob")


@pytest.fixture
def charlie(db: None) -> Member:
    return _member("charlie")


@pytest.fixture(scope="session", autouse=True)
def _clean_test_state() -> None:
    """Each run starts with an empty test Redis database and media folder."""
    redis_client().flushdb()
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveStack:
    url: str
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.processes[name] = subprocess.Popen(
            command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def start_gpu_worker(self) -> None:
        self.start("gpu-worker", _celery_worker_command("gpu"))

    def wait_healthy(self, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {self.log_dir / (name + '.log')}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=5)
                last = response.json()
                if response.status_code == 200:
                    return dict(last)
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.3)
        raise RuntimeError(f"stack not healthy after {timeout} s: {last}")

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)


def _celery_worker_command(queue: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "sora_social", "worker", "-Q", queue,
        "-n", f"{queue}-{os.getpid()}-{time.monotonic_ns()}@%h", "-c", "1",
        "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "-l", "INFO",
    ]


def _database_url() -> str:
    from django.db import connection

    params = connection.settings_dict
    host = str(params["HOST"]).replace("/", "%2F")
    return f"postgresql://{params['USER']}@{host}/{params['NAME']}"


@pytest.fixture(scope="session")
def live_stack(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    with django_db_blocker.unblock():
        database_url = _database_url()
    port = _free_port()
    log_dir = Path(settings.VAR_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "VAR_DIR": str(settings.VAR_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "JOB_LEASE_SECONDS": "3",
        "REAPER_INTERVAL_SECONDS": "1",
        # An unacknowledged message of a killed worker comes back quickly, so the tests see a
        # duplicate delivery being ignored.
        "BROKER_VISIBILITY_TIMEOUT": "8",
        "CREATE_RATE_LIMIT_PER_MINUTE": "10000",
        "DAILY_GENERATION_QUOTA": str(settings.DAILY_GENERATION_QUOTA),
        "HF_HUB_OFFLINE": "1",
    }
    stack = LiveStack(url=f"http://127.0.0.1:{port}", env=env, log_dir=log_dir)
    stack.start(
        "web",
        [sys.executable, "-m", "uvicorn", "sora_social.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log"],
    )
    stack.start_gpu_worker()
    stack.start("cpu-worker", _celery_worker_command("default"))
    stack.start(
        "scheduler",
        [sys.executable, "-m", "celery", "-A", "sora_social", "beat", "-l", "INFO",
         "-s", str(tmp_path_factory.mktemp("beat") / "schedule")],
    )
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()
