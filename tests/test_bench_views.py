"""The benchmark-only bare insert endpoint: mounted only with BENCH_ENDPOINTS, same auth as /v1."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import clear_url_caches
from rest_framework.test import APIClient

import sora_social.urls
from sora_social.bench_views import create_bench_rows_table
from tests.conftest import Member

pytestmark = pytest.mark.django_db


@pytest.fixture
def bench_endpoints() -> Iterator[None]:
    """The URLconf as a server started with BENCH_ENDPOINTS=true builds it, then as before."""
    create_bench_rows_table()
    try:
        with override_settings(BENCH_ENDPOINTS=True):
            importlib.reload(sora_social.urls)
            clear_url_caches()
            yield
    finally:
        importlib.reload(sora_social.urls)
        clear_url_caches()


def _rows() -> list[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, prompt FROM bench_rows ORDER BY id")
        return [(int(user_id), str(prompt)) for user_id, prompt in cursor.fetchall()]


def _post_as_the_sdk_does(client: APIClient) -> Any:
    return client.post(
        "/bench/rows",
        {"prompt": "a fox", "model": "sora-2", "seconds": "4", "size": "720x1280"},
        format="multipart",
    )


def test_it_is_not_mounted_by_default(alice: Member) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")

    response = _post_as_the_sdk_does(client)

    assert response.status_code == 404


@pytest.mark.usefixtures("bench_endpoints")
def test_it_inserts_one_row_for_the_keys_user(alice: Member) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")

    response = _post_as_the_sdk_does(client)

    assert response.status_code == 201
    assert _rows() == [(alice.user.pk, "a fox")]


@pytest.mark.usefixtures("bench_endpoints")
def test_it_refuses_a_wrong_key_and_inserts_nothing() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sk-ss-not-a-key")

    response = _post_as_the_sdk_does(client)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert _rows() == []


@pytest.mark.usefixtures("bench_endpoints")
def test_the_schema_documents_it_when_mounted() -> None:
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/json")

    operation = response.json()["paths"]["/bench/rows"]["post"]
    assert operation["summary"] == "Benchmark only: insert one row"
    assert set(operation["responses"]) == {"201"}
