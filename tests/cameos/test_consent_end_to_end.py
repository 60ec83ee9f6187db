"""The cameo promise on the live stack (web server, GPU and CPU workers, beat): every video
with alice's face is consented, seen by her, and removable; revocation takes it all back.

The cast: alice registers a cameo; bob is approved; charlie is not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from PIL import Image
from websockets.sync.client import connect

from cameos.actions.owner import do_decide_access
from cameos.faces import get_engine
from cameos.models import Cameo, CameoAccess, FaceVector
from cameos.search import nearest_cameos
from generation.models import DailyGenerationUsage, VideoJob
from tests.cameos.cameos import registered_cameo
from tests.cameos.images import astronaut
from tests.conftest import LiveStack, Member
from tests.generation.videos import sdk, stored_files
from tests.private_servers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT = 120




def _made(client: openai.OpenAI, prompt: str, **kwargs: Any) -> Any:
    video = client.videos.create_and_poll(prompt=prompt, seconds="4", size="720x1280",
                                          poll_interval_ms=300, **kwargs)
    assert video.status in ("completed", "failed"), video
    return video


def _appearances(stack: LiveStack, member: Member) -> dict[str, dict[str, Any]]:
    response = stack.request(member, "GET", "/api/appearances?limit=100")
    assert response.status_code == 200, response.text
    return {item["video_id"]: item for item in response.json()["results"]}


def _events(stack: LiveStack, member: Member, cameo: Cameo) -> list[dict[str, Any]]:
    response = stack.request(member, "GET", f"/api/cameos/{cameo.pk}/audit-log")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "alice.png"
    Image.fromarray(astronaut()).save(path)
    return path


def _status(video_id: str) -> str:
    return VideoJob.objects.get(pk=video_id).status


def test_alice_sees_consents_removes_and_revokes_every_video_of_her(
    live_stack: LiveStack, alice: Member, bob: Member, charlie: Member, tmp_path: Path
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    her_vector = np.asarray(FaceVector.objects.get(cameo=cameo).embedding, dtype=np.float32)
    bob_sdk, charlie_sdk = sdk(live_stack.url, bob.key), sdk(live_stack.url, charlie.key)

    # bob, approved, tags her: the video completes and she sees it, tagged.
    first = _made(bob_sdk, "@alice waves from a rooftop at dusk")
    assert first.status == "completed", first.error
    seen = _appearances(live_stack, alice)[first.id]
    assert (seen["status"], seen["source"], seen["author"]["handle"]) == (
        "draft", "tagged", "bob")
    assert live_stack.request(alice, "GET", seen["video_url"]).status_code == 200  # she watches

    # charlie, not approved, tags her: refused, and she sees the attempt.
    with pytest.raises(openai.PermissionDeniedError):
        charlie_sdk.videos.create(prompt="@alice on the moon")
    assert any(event["event"] == "use_refused" and event["author"] == "charlie"
               for event in _events(live_stack, alice, cameo))

    # charlie uploads a photo of her face, untagged: the output check finds her.
    with _photo(tmp_path).open("rb") as photo:
        sneaky = _made(charlie_sdk, "a portrait that slowly zooms in", input_reference=photo)
    assert (sneaky.status, sneaky.error.code) == ("failed", "cameo_not_consented")
    assert stored_files(sneaky.id) == []
    assert DailyGenerationUsage.objects.get(user=charlie.user).used == 0
    assert any(event["event"] == "use_refused" and event["reason"] == "found_in_output"
               and event["author"] == "charlie" and event["video_id"] == sneaky.id
               for event in _events(live_stack, alice, cameo))
    assert sneaky.id not in _appearances(live_stack, alice)

    # A remix of bob's first video shows her again (re-checked for bob).
    remix = bob_sdk.videos.remix(first.id, prompt="now at night")
    remix = bob_sdk.videos.poll(remix.id, poll_interval_ms=300)
    assert remix.status == "completed", remix.error

    # She removes one of bob's videos: it is gone from every path.
    removed = _made(bob_sdk, "@alice juggles three oranges")
    appearance_id = _appearances(live_stack, alice)[removed.id]["id"]
    assert live_stack.request(alice, "POST",
                f"/api/appearances/{appearance_id}/remove").status_code == 200
    assert bob_sdk.videos.retrieve(removed.id).error.code == "video_withdrawn"
    with pytest.raises(openai.APIStatusError) as gone:
        bob_sdk.videos.download_content(removed.id)
    assert gone.value.status_code == 410
    assert live_stack.request(alice, "GET", f"/v1/videos/{removed.id}/content").status_code == 404
    wait_for(lambda: stored_files(removed.id) == [], timeout=10, what="the files to go")

    # She turns on approval: bob's next video waits for her.
    assert live_stack.request(alice, "PATCH", f"/api/cameos/{cameo.pk}",
                json={"requires_approval": True}).status_code == 200
    held = _made(bob_sdk, "@alice reads a book under a tree")
    assert held.status == "completed", held.error
    with pytest.raises(openai.ConflictError) as waiting:
        bob_sdk.videos.download_content(held.id)
    assert waiting.value.code == "video_awaiting_approval"
    listed = _appearances(live_stack, alice)[held.id]
    assert listed["status"] == "awaiting_approval"
    assert live_stack.request(alice, "POST",
                f"/api/appearances/{listed['id']}/approve").status_code == 200
    assert len(bob_sdk.videos.download_content(held.id).read()) > 1000

    # A stranger gets 404 on every appearance and cameo endpoint that is not theirs.
    for method, path in [("GET", f"/api/appearances/{listed['id']}"),
                         ("POST", f"/api/appearances/{listed['id']}/remove"),
                         ("GET", f"/api/cameos/{cameo.pk}"),
                         ("GET", f"/api/cameos/{cameo.pk}/audit-log"),
                         ("GET", f"/api/cameos/{cameo.pk}/receipt"),
                         ("POST", f"/api/cameos/{cameo.pk}/revoke")]:
        assert live_stack.request(charlie, method, path).status_code == 404, path
    assert live_stack.request(charlie, "GET", f"/v1/videos/{held.id}/content").status_code == 404

    # She revokes while bob has a render in flight.
    in_flight = bob_sdk.videos.create(prompt="@alice runs a marathon", seconds="12",
                                      size="720x1280")
    revoked = live_stack.request(alice, "POST", f"/api/cameos/{cameo.pk}/revoke")
    assert revoked.status_code == 202, revoked.text
    assert FaceVector.objects.filter(cameo=cameo).count() == 0
    assert cameo.pk not in [match.cameo_id for match in
                            nearest_cameos(get_engine(), her_vector, statuses=Cameo.Status.values)]

    def receipt() -> dict[str, Any]:
        return dict(live_stack.request(alice, "GET", f"/api/cameos/{cameo.pk}/receipt").json())

    wait_for(lambda: receipt()["is_complete"], timeout=TIMEOUT, what="the revocation cascade")
    done = receipt()
    assert done["videos_withdrawn"] == sorted([first.id, remix.id, held.id])
    assert done["jobs_cancelled"] == [in_flight.id]
    assert len(done["erased"]["face_vectors"]) == 1
    assert _status(in_flight.id) == "cancelled"
    for video_id in (first.id, remix.id, held.id):
        assert bob_sdk.videos.retrieve(video_id).error.code == "video_withdrawn"
        wait_for(lambda video_id=video_id: stored_files(video_id) == [], timeout=10,
                 what=f"the files of {video_id} to go")
    assert DailyGenerationUsage.objects.get(user=bob.user).used == 4  # the cancelled one refunded
    assert {item["status"] for item in _appearances(live_stack, alice).values()} == {"removed"}


def test_a_new_appearance_reaches_the_owner_live_and_as_a_notification(
    live_stack: LiveStack, alice: Member, bob: Member
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    url = live_stack.url.replace("http", "ws") + "/ws/events"
    with connect(url, additional_headers={"Authorization": f"Bearer {alice.key}"}) as socket:
        assert json.loads(socket.recv(timeout=10))["user"]["handle"] == "alice"

        video = sdk(live_stack.url, bob.key).videos.create(prompt="@alice flies a kite")

        kinds: dict[str, dict[str, Any]] = {}
        while not {"cameo.appearance", "notification.created"} <= set(kinds):
            event = json.loads(socket.recv(timeout=30))
            kinds[event["type"]] = event["data"]
    assert kinds["cameo.appearance"]["video_id"] == video.id
    assert kinds["notification.created"]["kind"] == "appearance.new"
    listed = live_stack.request(alice, "GET", "/api/notifications").json()
    assert [item["data"]["video_id"] for item in listed["data"]] == [video.id]
