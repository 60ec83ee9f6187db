"""With PostgreSQL down, a web process answers 503 with Retry-After, as JSON for API clients and
as a page for browsers, and quickly: refused at once, or after DATABASE_CONNECT_TIMEOUT when
the server accepts the connection but never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from sora_social.processes import ProcessGroup, free_port, web_command
from tests.private_servers import service_env, wait_answering

pytestmark = pytest.mark.integration

CONNECT_TIMEOUT_SECONDS = 2
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
DATABASE_UNAVAILABLE = "The database is unavailable; retry in a few seconds."


@dataclass
class WebWithoutDatabase:
    refused: str  # nothing listens where its database should be
    silent: str  # its database accepts connections and never answers


@pytest.fixture(scope="module")
def web_without_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWithoutDatabase]:
    silent_server = socket.socket()
    silent_server.bind(("127.0.0.1", 0))
    silent_server.listen(64)  # the kernel completes handshakes; nobody ever reads
    silent_port = silent_server.getsockname()[1]
    log_dir = Path(tmp_path_factory.mktemp("database-outage"))
    groups: list[ProcessGroup] = []
    urls: list[str] = []
    try:
        # Port 1 (tcpmux): nothing listens there, so connecting is refused at once.
        for name, database_port in (("refused", 1), ("silent", silent_port)):
            env = service_env(
                redis_url=settings.REDIS_URL,
                database_url=f"postgresql://sora@127.0.0.1:{database_port}/sora",
                DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT_SECONDS),
            )
            group = ProcessGroup(env=env, log_dir=log_dir / name)
            groups.append(group)
            port = free_port()
            group.start("web", web_command("127.0.0.1", port))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_answering(url, path="/no-such-page")  # answered without the database
        yield WebWithoutDatabase(refused=urls[0], silent=urls[1])
    finally:
        for group in groups:
            group.stop()
        silent_server.close()


def _timed(method: str, url: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def test_the_video_api_answers_503_json_with_retry_after_at_once(
    web_without_database: WebWithoutDatabase,
) -> None:
    response, seconds = _timed(
        "POST",
        f"{web_without_database.refused}/v1/videos",
        headers={"Authorization": "Bearer sk-ss-any-key"},
        data={"prompt": "A fox"},
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "message": DATABASE_UNAVAILABLE,
            "type": "server_error",
            "param": None,
            "code": "database_unavailable",
        }
    }
    assert seconds < 1.5


def test_the_app_api_answers_503_in_the_project_shape(
    web_without_database: WebWithoutDatabase,
) -> None:
    response, _seconds = _timed(
        "GET",
        f"{web_without_database.refused}/api/me",
        headers={"Authorization": "Bearer sk-ss-any-key"},
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": {"code": "database_unavailable", "message": DATABASE_UNAVAILABLE}
    }


def test_a_signed_in_browser_gets_a_503_page(web_without_database: WebWithoutDatabase) -> None:
    response, _seconds = _timed(
        "GET",
        f"{web_without_database.refused}/",
        headers=BROWSER,
        cookies={"sessionid": "a-session-the-database-would-hold"},
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Service Unavailable (503)" in response.text


def test_a_database_that_never_answers_fails_the_request_after_the_connect_timeout(
    web_without_database: WebWithoutDatabase,
) -> None:
    response, seconds = _timed(
        "POST",
        f"{web_without_database.silent}/v1/videos",
        headers={"Authorization": "Bearer sk-ss-any-key"},
        data={"prompt": "A fox"},
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert CONNECT_TIMEOUT_SECONDS - 0.5 < seconds < CONNECT_TIMEOUT_SECONDS + 2
