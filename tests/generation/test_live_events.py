"""WebSocket /ws/events delivers a user's own job events, and nobody else's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import LiveStack, Member
from tests.generation.videos import sdk

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _socket(stack: LiveStack, key: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(stack.url.replace("http", "ws") + "/ws/events", additional_headers=headers)


def _events_until(socket: ClientConnection, kind: str, timeout: float = 60) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != kind:
        events.append(json.loads(socket.recv(timeout=timeout)))
    return events


def test_the_owner_gets_progress_and_completion_and_others_get_nothing(
    live_stack: LiveStack, alice: Member, bob: Member
) -> None:
    with _socket(live_stack, alice.key) as alice_socket, _socket(live_stack, bob.key) as bob_socket:
        assert json.loads(alice_socket.recv(timeout=10))["user"]["handle"] == "alice"
        assert json.loads(bob_socket.recv(timeout=10))["user"]["handle"] == "bob"

        video = sdk(live_stack.url, alice.key).videos.create(prompt="Live!")
        events = _events_until(alice_socket, "video.completed")

        kinds = [event["type"] for event in events]
        assert kinds[0] == "video.queued"
        assert "video.progress" in kinds
        assert {event["data"]["id"] for event in events} == {video.id}
        assert events[-1]["data"]["status"] == "completed"
        assert events[-1]["data"]["progress"] == 100
        progress = [
            event["data"]["progress"] for event in events if event["type"] == "video.progress"
        ]
        assert progress == sorted(progress)
        with pytest.raises(TimeoutError):
            bob_socket.recv(timeout=1)


def test_it_refuses_a_connection_without_credentials(live_stack: LiveStack) -> None:
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        with _socket(live_stack, None) as socket:
            socket.recv(timeout=5)


def test_it_refuses_a_cross_site_browser_page(live_stack: LiveStack, alice: Member) -> None:
    with pytest.raises(InvalidStatus):
        connect(
            live_stack.url.replace("http", "ws") + "/ws/events",
            additional_headers={"Authorization": f"Bearer {alice.key}"},
            origin="https://evil.example",  # type: ignore[arg-type]
        )
