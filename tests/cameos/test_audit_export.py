"""The owner exports their cameo's consent audit log, as JSON or CSV, streamed oldest first."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import json
import warnings
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from cameos.actions.owner import do_decide_access, do_update_cameo_settings
from cameos.api import export
from cameos.audit import AUDIT_COLUMNS, audit_header
from cameos.consent import NOTICE_VERSION
from cameos.events import use_allowed_event, use_refused_event
from cameos.models import Cameo, CameoAccess, CameoEvent
from sora_social.asgi import OneThreadASGIHandler
from tests.cameos.cameos import registered_cameo
from tests.conftest import Member

pytestmark = pytest.mark.django_db

START = datetime.datetime(2025, 3, 1, 9, 0, tzinfo=datetime.UTC)



def _body(response: Any) -> str:
    """The streamed body, read the way the ASGI server reads it."""
    assert isinstance(response, StreamingHttpResponse)

    async def read() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)().decode()


def _csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_body(response), newline="")))


def _exported_events(response: Any, export_format: str) -> list[Any]:
    if export_format == "csv":
        return _csv_rows(response)[1:]
    return list(json.loads(_body(response))["events"])


def _stamp(minutes: int) -> str:
    return (START + datetime.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _build_log(cameo: Cameo, alice: Member, bob: Member, charlie: Member) -> None:
    """After registration (consent, check): settings, a use, two refusals and a kind this
    code has never heard of; event n (in the order written) then placed at minute n."""
    do_update_cameo_settings(alice.user, cameo.pk, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    use_allowed_event(cameo, author=bob.user, video_id="video_abc", reason="approved")
    use_refused_event(cameo, author=charlie.user, reason="audience",
                      details={"tier": "approved", "prompt": "@alice surfing"})
    use_refused_event(cameo, author=charlie.user, reason='=HYPERLINK("http://x")',
                      details={"note": "-1+1"})
    # The trail gains kinds over time: the export lists them without knowing them.
    CameoEvent.objects.create(cameo=cameo, kind="video_removed", actor=alice.user,
                              video_id="video_abc", reason="by_owner")
    for minutes, event in enumerate(CameoEvent.objects.filter(cameo=cameo).order_by("id")):
        CameoEvent.objects.filter(pk=event.pk).update(
            created_at=START + datetime.timedelta(minutes=minutes)
        )


EXPECTED_EVENTS: list[dict[str, Any]] = [
    {"time": _stamp(0), "event": "consent_given", "author": "alice", "video_id": "",
     "reason": "", "details": {"notice_version": NOTICE_VERSION, "client": "tests"}},
    {"time": _stamp(1), "event": "check_passed", "author": "", "video_id": "",
     "reason": "", "details": {"references": 1}},
    {"time": _stamp(2), "event": "settings_changed", "author": "alice", "video_id": "",
     "reason": "", "details": {"audience": {"from": "only_me", "to": "approved"}}},
    {"time": _stamp(3), "event": "settings_changed", "author": "alice", "video_id": "",
     "reason": "", "details": {"access": {"handle": "bob", "decision": "approved"}}},
    {"time": _stamp(4), "event": "use_allowed", "author": "bob", "video_id": "video_abc",
     "reason": "approved", "details": {}},
    {"time": _stamp(5), "event": "use_refused", "author": "charlie", "video_id": "",
     "reason": "audience", "details": {"tier": "approved", "prompt": "@alice surfing"}},
    {"time": _stamp(6), "event": "use_refused", "author": "charlie", "video_id": "",
     "reason": '=HYPERLINK("http://x")', "details": {"note": "-1+1"}},
    {"time": _stamp(7), "event": "video_removed", "author": "alice", "video_id": "video_abc",
     "reason": "by_owner", "details": {}},
]


def test_the_owner_exports_every_event_oldest_first_as_json(
    alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user)
    _build_log(cameo, alice, bob, charlie)

    response = alice.api().get(f"/api/cameos/{cameo.pk}/audit-log")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="cameo-alice-audit.json"'
    assert response["Cache-Control"] == "private, no-store"
    export = json.loads(_body(response))
    assert set(export) == {"cameo", "exported_at", "events"}
    assert export["cameo"] == {
        "id": cameo.pk, "handle": "alice", "name": cameo.name, "kind": "person",
        "status": "verified", "created_at": _iso(cameo.created_at),
        "verified_at": _iso(Cameo.objects.get(pk=cameo.pk).verified_at), "revoked_at": None,
    }
    exported_at = datetime.datetime.fromisoformat(export["exported_at"])
    assert exported_at.tzinfo == datetime.UTC
    assert export["events"] == EXPECTED_EVENTS


def _iso(moment: datetime.datetime | None) -> str:
    assert moment is not None
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def test_the_csv_export_holds_the_same_rows_with_formulas_neutralised(
    alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user)
    _build_log(cameo, alice, bob, charlie)

    response = alice.api().get(f"/api/cameos/{cameo.pk}/audit-log", {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="cameo-alice-audit.csv"'
    rows = _csv_rows(response)
    assert rows[0] == ["time", "event", "author", "video_id", "reason", "details"]
    expected = [[*(event[column] for column in AUDIT_COLUMNS)] for event in EXPECTED_EVENTS]
    expected[6][4] = """'=HYPERLINK("http://x")"""
    assert [[*row[:5], json.loads(row[5])] for row in rows[1:]] == expected
    assert all(row[5] == json.dumps(json.loads(row[5]), separators=(",", ":")) for row in rows[1:])


def test_events_are_listed_by_when_they_happened_not_when_they_were_written(
    alice: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user)
    late = use_refused_event(cameo, author=charlie.user, reason="audience")
    CameoEvent.objects.filter(pk=late.pk).update(created_at=cameo.created_at - datetime.timedelta(
        seconds=1
    ))

    response = alice.api().get(f"/api/cameos/{cameo.pk}/audit-log?format=csv")

    assert [row[1] for row in _csv_rows(response)[1:]] == [
        "use_refused", "consent_given", "check_passed"
    ]


def test_every_cell_that_starts_like_a_formula_is_quoted_in_csv_only(
    alice: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user)
    cells = {"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)",
             "\tx": "'\tx", "\rx": "'\rx", "a=1": "a=1", "1-1": "1-1"}
    for reason in cells:
        use_refused_event(cameo, author=charlie.user, reason=reason)
    use_allowed_event(cameo, author=charlie.user, video_id="=video", reason="approved")
    owner = alice.api()

    csv_rows = _csv_rows(owner.get(f"/api/cameos/{cameo.pk}/audit-log?format=csv"))[3:]
    json_events = _exported_events(owner.get(f"/api/cameos/{cameo.pk}/audit-log"), "json")[2:]

    assert [row[4] for row in csv_rows[:-1]] == list(cells.values())
    assert csv_rows[-1][3] == "'=video"
    assert [event["reason"] for event in json_events[:-1]] == list(cells)
    assert json_events[-1]["video_id"] == "=video"


def test_strangers_and_unknown_cameos_get_404_in_both_formats(
    alice: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user)
    stranger = charlie.api()

    responses = [
        stranger.get(f"/api/cameos/{cameo.pk}/audit-log"),
        stranger.get(f"/api/cameos/{cameo.pk}/audit-log?format=json"),
        stranger.get(f"/api/cameos/{cameo.pk}/audit-log?format=csv"),
        alice.api().get("/api/cameos/cameo_unknown/audit-log?format=csv"),
    ]

    assert [response.status_code for response in responses] == [404] * 4
    assert responses[0].json() == stranger.get(f"/api/cameos/{cameo.pk}/events").json()
    assert responses[0].json()["error"]["code"] == "not_found"
    assert "Content-Disposition" not in responses[2]
    assert APIClient().get(f"/api/cameos/{cameo.pk}/audit-log?format=csv").status_code == 401


def test_an_unknown_format_is_refused_with_400(alice: Member) -> None:
    cameo = registered_cameo(alice.user)

    response = alice.api().get(f"/api/cameos/{cameo.pk}/audit-log?format=xlsx")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": 'format: "xlsx" is not an export format: use json or csv.',
            "fields": {"format": ['"xlsx" is not an export format: use json or csv.']},
        }
    }


@pytest.mark.parametrize("export_format", ["json", "csv"])
def test_the_export_takes_the_same_queries_however_long_the_log(
    alice: Member, bob: Member, charlie: Member, export_format: str,
    django_assert_max_num_queries: Any,
) -> None:
    cameo = registered_cameo(alice.user)
    owner = alice.api()
    url = f"/api/cameos/{cameo.pk}/audit-log?format={export_format}"

    # The API key, its last use, the cameo, the events (one cursor, however many rows).
    with django_assert_max_num_queries(4):
        short = _exported_events(owner.get(url), export_format)
    for number in range(60):
        use_refused_event(cameo, author=(bob, charlie)[number % 2].user, reason="audience")
    with django_assert_max_num_queries(4):
        long = _exported_events(owner.get(url), export_format)

    assert (len(short), len(long)) == (2, 62)
    assert {event["author"] if export_format == "json" else event[2] for event in long[2:]} == {
        "bob", "charlie"
    }


def _asgi_get(path: str, query: str, key: str) -> list[dict[str, Any]]:
    """What the production ASGI handler sends for a GET, message by message."""
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": path, "query_string": query.encode(),
        "headers": [(b"host", b"localhost"), (b"authorization", f"Bearer {key}".encode())],
        "http_version": "1.1", "scheme": "http", "root_path": "",
        "server": ("localhost", 80), "client": ("127.0.0.1", 50000),
    }
    # The handler would close the connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(OneThreadASGIHandler())(scope, receive, send)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return sent


@pytest.mark.parametrize("export_format", ["json", "csv"])
def test_the_server_sends_a_long_log_in_pieces_as_it_reads_it(
    alice: Member, charlie: Member, export_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cameo = registered_cameo(alice.user)
    for _ in range(40):
        use_refused_event(cameo, author=charlie.user, reason="audience")
    monkeypatch.setattr(export, "PIECES_PER_SEND", 10)

    with warnings.catch_warnings():
        # Django warns when it must read a whole body into memory to serve it.
        warnings.simplefilter("error")
        sent = _asgi_get(f"/api/cameos/{cameo.pk}/audit-log", f"format={export_format}",
                         alice.key)

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    parts = [message["body"] for message in sent[1:] if message.get("body")]
    # 42 events and the opening piece (CSV's header line, JSON's cameo), 10 at a time.
    assert len(parts) == 5
    body = b"".join(parts).decode()
    if export_format == "json":
        assert len(json.loads(body)["events"]) == 42
    else:
        assert len(body.splitlines()) == 43


def test_the_schema_describes_the_export_in_both_formats_with_its_errors(alice: Member) -> None:
    schema = APIClient().get("/api/schema", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/cameos/{cameo_id}/audit-log"]["get"]
    assert set(operation["responses"]) == {"200", "400", "401", "404"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    for status in ("400", "401", "404"):
        error = operation["responses"][status]["content"]["application/json"]["schema"]
        assert error["$ref"] == "#/components/schemas/ApiError"
    [format_parameter] = [
        parameter for parameter in operation["parameters"] if parameter["name"] == "format"
    ]
    assert format_parameter["in"] == "query"
    assert format_parameter["schema"]["enum"] == ["json", "csv"]
    components = schema["components"]["schemas"]
    assert list(components["AuditEvent"]["properties"]) == list(AUDIT_COLUMNS)
    header = audit_header(registered_cameo(alice.user))
    assert list(components["AuditCameo"]["properties"]) == list(header)
