"""Notifications: written by actions, pushed live after commit, listed and marked read over /api."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from rest_framework.exceptions import NotFound
from rest_framework.test import APIClient

from sora_social.events import user_group_name
from sora_social.notifications.actions import (
    access_notification,
    do_mark_read,
    do_notify,
)
from sora_social.notifications.models import Notification
from tests.conftest import Member

pytestmark = pytest.mark.django_db



def _notify(member: Member, number: int = 1, **fields: Any) -> Notification:
    return do_notify(
        member.user.pk,
        kind=fields.pop("kind", "appearance.new"),
        title=fields.pop("title", f"You appear in video {number}"),
        data=fields.pop("data", {"video_id": f"video_{number}"}),
        **fields,
    )


class _Listener:
    """A channel in a user's live-event group, as their WebSocket connection has, read from one
    event loop of its own (the channel layer binds a channel's buffer to the loop that reads)."""

    def __init__(self, member: Member) -> None:
        self._layer = get_channel_layer()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._group = user_group_name(member.user.pk)
        self._channel: str = self._run(self._subscribe())

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _subscribe(self) -> str:
        channel: str = await self._layer.new_channel()
        await self._layer.group_add(self._group, channel)
        return channel

    async def _drain(self, quiet_seconds: float) -> list[dict[str, Any]]:
        events = []
        while True:
            try:
                message = await asyncio.wait_for(self._layer.receive(self._channel), quiet_seconds)
            except TimeoutError:
                return events
            events.append(message["event"])

    def received(self, quiet_seconds: float = 1.5) -> list[dict[str, Any]]:
        """Every live event sent until none arrives for `quiet_seconds`."""
        return self._run(self._drain(quiet_seconds))  # type: ignore[no-any-return]

    def close(self) -> None:
        self._run(self._layer.group_discard(self._group, self._channel))
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def alices_events(alice: Member) -> Iterator[_Listener]:
    listener = _Listener(alice)
    yield listener
    listener.close()


def _unread_ids(member: Member) -> set[int]:
    return set(
        Notification.objects.filter(recipient=member.user, read_at__isnull=True).values_list(
            "pk", flat=True
        )
    )


def test_notifying_writes_the_row_and_pushes_one_event_once_committed(
    alice: Member,
    alices_events: _Listener,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notification = _notify(alice, data={"video_id": "video_1", "appearance_id": 7})
        before_commit = alices_events.received(quiet_seconds=0.5)
    after_commit = alices_events.received()

    stored = Notification.objects.get()
    assert stored.pk == notification.pk
    assert (stored.recipient_id, stored.kind, stored.title, stored.body, stored.read_at) == (
        alice.user.pk, "appearance.new", "You appear in video 1", "", None
    )
    assert stored.data == {"video_id": "video_1", "appearance_id": 7}
    assert len(callbacks) == 1
    assert before_commit == []
    detail = alice.api().get(f"/api/notifications/{notification.pk}").json()
    assert after_commit == [{"type": "notification.created", "data": detail}]


def test_a_rolled_back_notification_leaves_no_row_and_sends_nothing(
    alice: Member,
    alices_events: _Listener,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    def notify_then_fail() -> None:
        with transaction.atomic():
            _notify(alice)
            raise RuntimeError("the caller's change failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            notify_then_fail()

    assert callbacks == []
    assert alices_events.received(quiet_seconds=0.5) == []
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "Appearance New"}, "notification kind"),
        ({"kind": "appearance..new"}, "notification kind"),
        ({"kind": "a" * 65}, "notification kind"),
        ({"title": "  "}, "notification title"),
        ({"title": "t" * 201}, "notification title"),
        ({"data": {"when": object()}}, "notification data must be JSON"),
    ],
)
def test_a_malformed_notification_is_refused_before_anything_is_written(
    alice: Member,
    django_capture_on_commit_callbacks: Callable[..., Any],
    fields: dict[str, Any],
    message: str,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(ValueError, match=message):
            _notify(alice, **fields)

    assert callbacks == []
    assert Notification.objects.count() == 0


def test_the_database_refuses_a_kind_that_is_not_a_slug(alice: Member) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(recipient=alice.user, kind="Not A Slug", title="t")


def test_the_list_is_newest_first_in_pages_with_the_unread_count(alice: Member) -> None:
    notifications = [_notify(alice, number) for number in range(5)]
    do_mark_read(alice.user, [notifications[3].pk])
    client = alice.api()

    first = client.get("/api/notifications", {"limit": 2}).json()
    second = client.get("/api/notifications", {"limit": 2, "after": first["last_id"]}).json()
    last = client.get("/api/notifications", {"limit": 2, "after": second["last_id"]}).json()

    newest_first = [notification.pk for notification in reversed(notifications)]
    assert [item["id"] for item in first["data"]] == newest_first[:2]
    assert [item["id"] for item in second["data"]] == newest_first[2:4]
    assert [item["id"] for item in last["data"]] == newest_first[4:]
    assert [page["has_more"] for page in (first, second, last)] == [True, True, False]
    assert (first["first_id"], first["last_id"]) == (newest_first[0], newest_first[1])
    assert {page["unread_count"] for page in (first, second, last)} == {4}
    assert first["data"][0] == {
        "id": notifications[4].pk,
        "kind": "appearance.new",
        "title": "You appear in video 4",
        "body": "",
        "data": {"video_id": "video_4"},
        "created_at": first["data"][0]["created_at"],
        "read_at": None,
    }
    assert first["data"][1]["read_at"] is not None


def test_the_unread_filter_lists_only_unread_ones(alice: Member) -> None:
    notifications = [_notify(alice, number) for number in range(4)]
    do_mark_read(alice.user, [notifications[1].pk, notifications[2].pk])

    unread = alice.api().get("/api/notifications", {"unread": "true"}).json()

    assert [item["id"] for item in unread["data"]] == [notifications[3].pk, notifications[0].pk]
    assert (unread["has_more"], unread["unread_count"]) == (False, 2)


def test_an_empty_list_says_so(alice: Member) -> None:
    response = alice.api().get("/api/notifications")

    assert response.status_code == 200
    assert response.json() == {
        "data": [], "first_id": None, "last_id": None, "has_more": False, "unread_count": 0
    }


def test_the_list_lists_only_ones_own_notifications(alice: Member, bob: Member) -> None:
    mine = _notify(alice, 1)
    _notify(bob, 2)

    listed = alice.api().get("/api/notifications").json()

    assert [item["id"] for item in listed["data"]] == [mine.pk]
    assert listed["unread_count"] == 1


def test_the_list_takes_three_queries_however_long_the_page(
    alice: Member, django_assert_num_queries: Callable[..., Any]
) -> None:
    for number in range(30):
        _notify(alice, number)
    client = alice.api()
    client.get("/api/notifications")  # records the key's first use, which writes once

    # The API key (with its user), the page, the unread count.
    with django_assert_num_queries(3):
        response = client.get("/api/notifications", {"limit": 25})

    assert len(response.json()["data"]) == 25


def test_marking_by_ids_marks_only_those_and_counts_them(alice: Member) -> None:
    notifications = [_notify(alice, number) for number in range(3)]
    client = alice.api()

    first = client.post(
        "/api/notifications/read",
        {"ids": [notifications[0].pk, notifications[1].pk]},
        format="json",
    )
    again = client.post(
        "/api/notifications/read", {"ids": [notifications[0].pk]}, format="json"
    )

    assert first.status_code == 200
    assert first.json() == {"marked": 2, "unread_count": 1}
    assert again.json() == {"marked": 0, "unread_count": 1}
    assert _unread_ids(alice) == {notifications[2].pk}


def test_marking_all_marks_every_unread_one(alice: Member, bob: Member) -> None:
    for number in range(3):
        _notify(alice, number)
    bobs = _notify(bob)

    response = alice.api().post("/api/notifications/read", {"all": True}, format="json")

    assert response.json() == {"marked": 3, "unread_count": 0}
    assert _unread_ids(alice) == set()
    assert _unread_ids(bob) == {bobs.pk}


def test_another_users_notification_is_not_found_and_not_marked(
    alice: Member, bob: Member
) -> None:
    bobs = _notify(bob)
    client = alice.api()

    detail = client.get(f"/api/notifications/{bobs.pk}")
    missing = client.get(f"/api/notifications/{bobs.pk + 1000}")
    marked = client.post("/api/notifications/read", {"ids": [bobs.pk]}, format="json")

    assert detail.status_code == missing.status_code == 404
    assert detail.json()["error"] == {
        "code": "not_found", "message": f"No notification found with id '{bobs.pk}'."
    }
    assert missing.json()["error"]["message"] == (
        f"No notification found with id '{bobs.pk + 1000}'."
    )
    assert marked.json() == {"marked": 0, "unread_count": 0}
    assert _unread_ids(bob) == {bobs.pk}
    with pytest.raises(NotFound, match="No notification found"):
        access_notification(alice.user, bobs.pk)


def test_the_owner_reads_one_notification_without_marking_it(alice: Member) -> None:
    notification = _notify(alice, body="By @bob, a draft.")

    response = alice.api().get(f"/api/notifications/{notification.pk}")

    assert response.status_code == 200
    assert response.json()["body"] == "By @bob, a draft."
    assert response.json()["read_at"] is None
    assert _unread_ids(alice) == {notification.pk}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "abc"}, "after"),
        ({"after": -1}, "after"),
        ({"after": 2**63}, "after"),
        ({"unread": "maybe"}, "unread"),
        ({"order": "asc"}, "order"),
    ],
)
def test_the_list_refuses_bad_parameters(
    alice: Member, query: dict[str, Any], field: str
) -> None:
    _notify(alice)

    response = alice.api().get("/api/notifications", query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"ids": []}, "ids"),
        ({"ids": ["one"]}, "ids"),
        ({"ids": [0]}, "ids"),
        ({"ids": [2**63]}, "ids"),
        ({"ids": list(range(1, 502))}, "ids"),
        ({"ids": 5}, "ids"),
        ({"all": False}, "all"),
        ({"all": True, "ids": [1]}, "non_field_errors"),
        ({"all": True, "everything": True}, "everything"),
    ],
)
def test_marking_refuses_bad_input_and_changes_nothing(
    alice: Member, body: dict[str, Any], field: str
) -> None:
    notification = _notify(alice)

    response = alice.api().post("/api/notifications/read", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == [field]
    assert _unread_ids(alice) == {notification.pk}


def test_marking_names_the_choice_to_make(alice: Member) -> None:
    response = alice.api().post("/api/notifications/read", {}, format="json")

    assert response.json()["error"]["message"] == (
        'Send either {"ids": [...]} or {"all": true}.'
    )


def test_marking_refuses_a_body_that_is_not_an_object(alice: Member) -> None:
    notification = _notify(alice)

    response = alice.api().post("/api/notifications/read", [notification.pk], format="json")

    assert response.status_code == 400
    assert _unread_ids(alice) == {notification.pk}


def test_an_id_beyond_any_row_is_not_found(alice: Member) -> None:
    response = alice.api().get(f"/api/notifications/{2**70}")

    assert response.status_code == 404


def test_without_credentials_every_endpoint_is_refused(alice: Member) -> None:
    notification = _notify(alice)
    anonymous = APIClient()

    responses = [
        anonymous.get("/api/notifications"),
        anonymous.get(f"/api/notifications/{notification.pk}"),
        anonymous.post("/api/notifications/read", {"all": True}, format="json"),
    ]

    assert [response.status_code for response in responses] == [401, 401, 401]
    assert {response.json()["error"]["code"] for response in responses} == {"not_authenticated"}
    assert _unread_ids(alice) == {notification.pk}


NOTIFICATION_OPERATIONS = {
    ("/api/notifications", "get"): {"200", "400", "401"},
    ("/api/notifications/read", "post"): {"200", "400", "401"},
    ("/api/notifications/{notification_id}", "get"): {"200", "401", "404"},
}


def test_every_notification_operation_is_described_with_its_errors() -> None:
    schema = APIClient().get("/api/schema", HTTP_ACCEPT="application/json").json()

    described = {
        (path, method): set(operation["responses"])
        for path, operations in schema["paths"].items()
        if path.startswith("/api/notifications")
        for method, operation in operations.items()
    }
    assert described == NOTIFICATION_OPERATIONS
    listing = schema["paths"]["/api/notifications"]["get"]
    assert {parameter["name"] for parameter in listing["parameters"]} == {
        "after", "limit", "unread"
    }
    for (path, method), statuses in NOTIFICATION_OPERATIONS.items():
        for status in statuses - {"200"}:
            error = schema["paths"][path][method]["responses"][status]
            assert error["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ApiError"
            }
