"""GET /healthz and the API schema."""

from __future__ import annotations

import time

import httpx
import pytest
from rest_framework.test import APIClient

from tests.conftest import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.integration
def test_health_names_the_queue_that_lost_its_last_worker(live_stack: LiveStack) -> None:
    healthy = httpx.get(f"{live_stack.url}/healthz").json()
    assert healthy["status"] == "ok"
    assert {"database", "redis", "workers.gpu", "workers.default"} <= set(healthy["checks"])

    live_stack.group.kill("gpu-worker")  # a clean stop (SIGTERM)
    try:
        response = httpx.get(f"{live_stack.url}/healthz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["workers.gpu"]
    finally:
        live_stack.start_gpu_worker()
    deadline = time.monotonic() + 60
    while httpx.get(f"{live_stack.url}/healthz").status_code != 200:
        assert time.monotonic() < deadline, "the new worker never reported in"
        time.sleep(0.3)


def test_the_openapi_schema_describes_the_app_api() -> None:
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/auth/login", "/api/keys", "/api/me"} <= set(paths)
