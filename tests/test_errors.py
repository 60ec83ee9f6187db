"""Every error from every endpoint is JSON, DEBUG or not: the OpenAI shape under /v1, the
project's shape ({"error": {"code", "message"}}) elsewhere. Browsers on web pages keep HTML."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from sora_social.accounts.models import ApiKey
from sora_social.errors import SERVER_ERROR_MESSAGE
from tests.conftest import Member
from tests.failing_views import SECRET_DETAIL

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
DEBUG_MODES = pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])


def _openai_error(message: str, code: str, error_type: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _is_json(response: object) -> bool:
    return response["Content-Type"] == "application/json"  # type: ignore[index]


def _is_html(response: object) -> bool:
    return response["Content-Type"].startswith("text/html")  # type: ignore[index]


@pytest.fixture
def failing_views(settings: Any) -> Any:
    settings.ROOT_URLCONF = "tests.failing_views"
    return settings


@DEBUG_MODES
def test_an_unknown_v1_path_is_a_json_404_in_the_openai_shape(
    settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug

    response = Client().get("/v1/nope")

    assert response.status_code == 404
    assert _is_json(response)
    assert response.json() == _openai_error("Nothing found at /v1/nope.", "not_found")


@DEBUG_MODES
def test_an_unknown_page_is_json_for_api_clients_and_html_for_browsers(
    settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug

    api_client = Client().get("/nowhere")
    browser = Client().get("/nowhere", **BROWSER)

    assert (api_client.status_code, browser.status_code) == (404, 404)
    assert api_client.json() == {
        "error": {"code": "not_found", "message": "Nothing found at /nowhere."}
    }
    assert _is_html(browser)


@DEBUG_MODES
def test_a_wrong_method_is_json_and_keeps_its_allow_header(
    settings: Any, debug: bool, alice: Member
) -> None:
    settings.DEBUG = debug
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {alice.key}"}

    page = Client().put("/accounts/signup/")
    app_api = Client().put("/api/me", **bearer)
    openai_api = Client().patch("/v1/videos", **bearer)

    assert (page.status_code, app_api.status_code, openai_api.status_code) == (405, 405, 405)
    assert page.json() == {
        "error": {
            "code": "method_not_allowed",
            "message": "Method PUT is not allowed on /accounts/signup/.",
        }
    }
    assert page["Allow"] == "GET, POST"
    assert app_api.json() == {
        "error": {"code": "method_not_allowed", "message": 'Method "PUT" not allowed.'}
    }
    assert openai_api.json() == _openai_error('Method "PATCH" not allowed.', "method_not_allowed")


@DEBUG_MODES
def test_a_crash_is_a_json_500_that_leaks_nothing_and_is_logged_with_its_traceback(
    failing_views: Any, debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    failing_views.DEBUG = debug
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.ERROR, logger="sora_social.errors"):
        openai_api = client.get("/v1/test/crash")
        app_api = client.get("/api/test/crash")
        page = client.get("/test/crash")

    assert (openai_api.status_code, app_api.status_code, page.status_code) == (500, 500, 500)
    assert openai_api.json() == _openai_error(SERVER_ERROR_MESSAGE, "server_error", "server_error")
    assert app_api.json() == page.json() == {
        "error": {"code": "server_error", "message": SERVER_ERROR_MESSAGE}
    }
    for response in (openai_api, app_api, page):
        assert SECRET_DETAIL not in response.content.decode()
    logged = [record for record in caplog.records if record.name == "sora_social.errors"]
    assert [record.getMessage() for record in logged] == [
        "GET /v1/test/crash failed", "GET /api/test/crash failed", "GET /test/crash failed"
    ]
    assert all(record.exc_info and SECRET_DETAIL in str(record.exc_info[1]) for record in logged)


@DEBUG_MODES
def test_a_database_or_broker_outage_reaching_a_view_is_a_503_with_retry_after(
    failing_views: Any, debug: bool
) -> None:
    failing_views.DEBUG = debug
    client = Client(raise_request_exception=False)

    database = client.get("/v1/test/database-down")
    broker = client.get("/v1/test/broker-down")
    app_api = client.get("/api/test/database-down")

    assert (database.status_code, broker.status_code, app_api.status_code) == (503, 503, 503)
    assert database["Retry-After"] == broker["Retry-After"] == app_api["Retry-After"] == "5"
    assert database.json() == _openai_error(
        "The database is unavailable; retry in a few seconds.", "database_unavailable",
        "server_error",
    )
    assert broker.json() == _openai_error(
        "The message broker is unavailable; retry in a few seconds.", "broker_unavailable",
        "server_error",
    )
    assert app_api.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The database is unavailable; retry in a few seconds.",
        }
    }
    assert SECRET_DETAIL not in database.content.decode()


def test_a_browser_on_a_page_gets_html_error_pages_that_tell_nothing(
    failing_views: Any,
) -> None:
    failing_views.DEBUG = False
    client = Client(raise_request_exception=False)

    crash = client.get("/test/crash", **BROWSER)
    database = client.get("/test/database-down", **BROWSER)

    assert (crash.status_code, database.status_code) == (500, 503)
    assert _is_html(crash) and _is_html(database)
    assert database["Retry-After"] == "5"
    for response in (crash, database):
        assert SECRET_DETAIL not in response.content.decode()


@DEBUG_MODES
def test_a_csrf_failure_is_json_for_api_clients_and_html_for_browsers(
    settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    form = {"username": "alice", "password": "correct horse battery staple"}

    api_client = Client(enforce_csrf_checks=True).post("/accounts/login/", form)
    browser = Client(enforce_csrf_checks=True).post("/accounts/login/", form, **BROWSER)

    assert (api_client.status_code, browser.status_code) == (403, 403)
    assert api_client.json() == {
        "error": {
            "code": "csrf_failed",
            "message": "CSRF verification failed: CSRF cookie not set.",
        }
    }
    assert _is_html(browser)


def test_the_app_api_answers_every_error_in_the_project_shape(
    alice: Member, bob: Member
) -> None:
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")

    anonymous = APIClient().get("/api/me", **BROWSER)
    strangers_key = bearer.delete(f"/api/keys/{ApiKey.objects.get(user=bob.user).pk}")

    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="api"'
    assert anonymous.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
        }
    }
    assert strangers_key.status_code == 404
    assert strangers_key.json()["error"]["code"] == "not_found"
    assert set(strangers_key.json()["error"]) == {"code", "message"}


def test_the_error_handlers_answer_api_clients_in_json_on_their_own(
    failing_views: Any,
) -> None:
    """Without the middleware (say, an error in another middleware), production still never
    shows an API client an HTML page."""
    failing_views.DEBUG = False
    failing_views.MIDDLEWARE = [
        name for name in django_settings.MIDDLEWARE if not name.startswith("sora_social.errors.")
    ]
    client = Client(raise_request_exception=False)

    missing = client.get("/v1/nope")
    crash = client.get("/test/crash")
    database = client.get("/v1/test/database-down")

    assert (missing.status_code, crash.status_code, database.status_code) == (404, 500, 503)
    assert missing.json() == _openai_error("Nothing found at /v1/nope.", "not_found")
    assert crash.json() == {"error": {"code": "server_error", "message": SERVER_ERROR_MESSAGE}}
    assert database.json()["error"]["code"] == "database_unavailable"
    assert database["Retry-After"] == "5"
