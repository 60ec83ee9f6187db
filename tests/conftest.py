"""The fixed cast (alice, bob, charlie) and the live stack: a real web server process and real
Celery worker processes against the test database (PostgreSQL + pgvector) and Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from sora_social.accounts.actions import do_create_user, do_issue_api_key
from sora_social.accounts.models import User
from sora_social.embedded import stop_owned
from sora_social.processes import (
    ROOT,
    ProcessGroup,
    free_port,
    scheduler_command,
    web_command,
    worker_command,
)
from sora_social.redis import redis_client
from tests.settings import TEST_RUNS_DIR


@dataclass
class Member:
    user: User
    key: str

    def api(self) -> APIClient:
        """An in-process API client signed in with this member's API key."""
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.key}")
        return client


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


# The live stack's logs, kept after the run (the run's own folder is removed).
LOG_DIR = TEST_RUNS_DIR / "logs"


@pytest.fixture(scope="session", autouse=True)
def _clean_test_state() -> None:
    """Each run starts with an empty test Redis database, and no folder of a dead run is left."""
    redis_client().flushdb()
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    for run_dir in TEST_RUNS_DIR.glob("run-*"):
        pid = int(run_dir.name.removeprefix("run-")) if run_dir.name[4:].isdigit() else 0
        if not psutil.pid_exists(pid):
            shutil.rmtree(run_dir, ignore_errors=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the embedded servers this run started and remove its folder, pass or fail."""
    stop_owned()
    run_dir = Path(settings.VAR_DIR)
    if run_dir.parent == TEST_RUNS_DIR:
        shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class LiveStack:
    url: str
    group: ProcessGroup
    gpu_worker_name: str = ""

    def start_gpu_worker(self) -> str:
        """Start a render worker under a fresh node name, as a replacement machine would have;
        return that name as /healthz lists it."""
        name = f"gpu-{time.monotonic_ns()}@%h"
        self.group.start("gpu-worker", worker_command("gpu", name=name))
        self.gpu_worker_name = name.replace("%h", socket.gethostname())
        return self.gpu_worker_name

    def request(self, member: Member, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An HTTP request to this stack with `member`'s API key."""
        return httpx.request(method, f"{self.url}{path}", timeout=60,
                             headers={"Authorization": f"Bearer {member.key}"}, **kwargs)

    def kill_gpu_worker(self) -> None:
        self.group.kill("gpu-worker", signal.SIGKILL)

    def start_cpu_worker(self) -> None:
        """A CPU worker (queue `default`: output checks, liveness, the dispatcher) under a
        fresh node name."""
        self.group.start("cpu-worker", worker_command("default",
                                                      name=f"default-{time.monotonic_ns()}@%h"))

    def kill_cpu_worker(self) -> None:
        self.group.kill("cpu-worker", signal.SIGKILL)


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
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "VAR_DIR": str(settings.VAR_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "JOB_LEASE_SECONDS": "3",
        # Long enough for a check of a 12 s video under load; short enough for a crash test.
        "OUTPUT_CHECK_LEASE_SECONDS": "20",
        "REAPER_INTERVAL_SECONDS": "1",
        "CREATE_RATE_LIMIT_PER_MINUTE": "10000",
        "DAILY_GENERATION_QUOTA": str(settings.DAILY_GENERATION_QUOTA),
        "HF_HUB_OFFLINE": "1",
    }
    group = ProcessGroup(env=env, log_dir=LOG_DIR)
    stack = LiveStack(url=f"http://127.0.0.1:{port}", group=group)
    group.start("web", web_command("127.0.0.1", port))
    stack.start_gpu_worker()
    stack.start_cpu_worker()
    group.start("scheduler", scheduler_command(tmp_path_factory.mktemp("beat") / "schedule"))
    try:
        group.wait_healthy(stack.url)
        yield stack
    finally:
        group.stop()
