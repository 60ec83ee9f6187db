"""GET /healthz and the API schema."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from sora_social.celery import WORKER_BEACON_TTL_SECONDS
from tests.conftest import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)


def _health(stack: LiveStack) -> httpx.Response:
    return httpx.get(f"{stack.url}/healthz", timeout=10)


def _wait_for_health(
    stack: LiveStack, condition: Callable[[httpx.Response], bool], timeout: float, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = _health(stack)
        if condition(response):
            return dict(response.json())
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {response.json()}"
        time.sleep(0.2)


def _gpu_workers(response: httpx.Response) -> list[str]:
    return list(response.json()["checks"]["workers.gpu"]["workers"])


def _only_current_gpu_worker(stack: LiveStack) -> None:
    """Wait until the render worker that runs now is the only one listed: one killed by an
    earlier test drops out within the beacon's lifetime."""
    _wait_for_health(
        stack,
        lambda response: _gpu_workers(response) == [stack.gpu_worker_name],
        timeout=WORKER_BEACON_TTL_SECONDS + 30,
        what="only the current render worker to be listed",
    )


def _restart_gpu_worker(stack: LiveStack) -> None:
    stack.start_gpu_worker()
    _wait_for_health(
        stack, lambda response: response.status_code == 200, timeout=60,
        what="the new render worker to report in",
    )


@pytest.mark.integration
def test_health_names_the_queue_that_lost_its_last_worker(live_stack: LiveStack) -> None:
    _only_current_gpu_worker(live_stack)
    healthy = _health(live_stack).json()
    assert healthy["status"] == "ok"
    assert {"database", "redis", "workers.gpu", "workers.default"} <= set(healthy["checks"])

    live_stack.group.kill("gpu-worker")  # a clean stop (SIGTERM)
    try:
        response = _health(live_stack)
        assert response.status_code == 503
        assert response.json()["failing"] == ["workers.gpu"]
        assert _gpu_workers(response) == []
    finally:
        _restart_gpu_worker(live_stack)


@pytest.mark.integration
def test_a_killed_worker_drops_out_within_the_beacon_lifetime(live_stack: LiveStack) -> None:
    _only_current_gpu_worker(live_stack)

    live_stack.kill_gpu_worker()  # SIGKILL: no chance to say goodbye
    killed_at = time.monotonic()
    try:
        _wait_for_health(
            live_stack, lambda response: response.status_code == 503,
            timeout=WORKER_BEACON_TTL_SECONDS + 5, what="the killed worker to drop out",
        )
        assert time.monotonic() - killed_at <= WORKER_BEACON_TTL_SECONDS + 5
    finally:
        _restart_gpu_worker(live_stack)


def test_the_openapi_schema_describes_the_app_api() -> None:
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/auth/login", "/api/keys", "/api/me"} <= set(paths)
