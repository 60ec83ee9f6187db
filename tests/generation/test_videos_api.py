"""The OpenAI-compatible Videos API, driven by the official `openai` SDK against a real server
process and real Celery worker processes (PostgreSQL + pgvector, Redis, no eager mode)."""

from __future__ import annotations

import io

import httpx
import pytest
from openai import NotFoundError
from PIL import Image

from generation.models import VideoJob
from tests.conftest import LiveStack, Member
from tests.generation.videos import probe_mp4, sdk, stored_files

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_it_renders_a_video_with_sound_that_the_sdk_downloads(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)

    video = client.videos.create_and_poll(
        model="sora-2", prompt='A fox on a rooftop at dusk. She says "watch this!"',
        seconds="4", size="1280x720",
    )

    assert video.status == "completed", video.error
    assert video.progress == 100
    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "1280x720")
    assert video.completed_at is not None and video.completed_at >= video.created_at
    mp4 = client.videos.download_content(video.id).read()
    media = probe_mp4(mp4)
    assert media["video_codec"] == "h264"
    assert media["audio_codec"] == "aac"
    assert (media["width"], media["height"]) == (1280, 720)
    assert media["duration"] == pytest.approx(4.0, abs=1 / 24)
    assert media["audio_rms"] > 0.001
    thumbnail = Image.open(
        io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read())
    )
    assert thumbnail.format == "WEBP"
    spritesheet = Image.open(
        io.BytesIO(client.videos.download_content(video.id, variant="spritesheet").read())
    )
    assert spritesheet.format == "JPEG"
    assert stored_files(video.id) == [
        f"videos/{video.id}/spritesheet.jpg",
        f"videos/{video.id}/thumbnail.webp",
        f"videos/{video.id}/video.mp4",
    ]


def test_it_renders_an_eight_second_portrait_clip_frame_for_frame(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)

    video = client.videos.create_and_poll(prompt="Waves", seconds="8", size="720x1280")

    media = probe_mp4(client.videos.download_content(video.id).read())
    assert (media["width"], media["height"], media["frames"]) == (720, 1280, 8 * 24)


def test_it_starts_an_image_to_video_render_from_the_reference(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)
    image = io.BytesIO()
    Image.new("RGB", (640, 360), (200, 30, 30)).save(image, format="PNG")

    video = client.videos.create_and_poll(
        prompt="The red wall slowly comes alive", size="1280x720",
        input_reference=("wall.png", image.getvalue(), "image/png"),
    )

    assert video.status == "completed", video.error
    thumbnail = Image.open(
        io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read())
    ).convert("RGB")
    red, green, blue = thumbnail.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    assert red > green + 60 and red > blue + 60


def test_it_lists_pages_in_both_orders(live_stack: LiveStack, alice: Member, bob: Member) -> None:
    client = sdk(live_stack.url, alice.key)
    created = [client.videos.create(prompt=f"clip {number}").id for number in range(5)]
    sdk(live_stack.url, bob.key).videos.create(prompt="not alice's")

    first_page = client.videos.list(limit=2)
    newest_first = [video.id for video in client.videos.list(limit=2)]  # auto-paginates
    oldest_first = [video.id for video in client.videos.list(limit=2, order="asc")]

    assert [video.id for video in first_page.data] == created[::-1][:2]
    assert first_page.has_more is True
    assert newest_first == created[::-1]
    assert oldest_first == created


def test_it_deletes_a_video_and_its_files(live_stack: LiveStack, alice: Member) -> None:
    client = sdk(live_stack.url, alice.key)
    video = client.videos.create_and_poll(prompt="A short-lived clip")
    assert stored_files(video.id)

    deleted = client.videos.delete(video.id)

    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(NotFoundError):
        client.videos.retrieve(video.id)
    assert stored_files(video.id) == []
    assert not VideoJob.objects.filter(pk=video.id).exists()


def test_a_remix_starts_from_its_source_and_records_its_lineage(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)
    source = client.videos.create_and_poll(prompt="A blue whale in deep water", size="1280x720")

    remix = client.videos.remix(source.id, prompt="Now in a golden sunset")
    remix = client.videos.poll(remix.id)

    assert remix.status == "completed", remix.error
    assert remix.remixed_from_video_id == source.id
    assert (remix.seconds, remix.size, remix.prompt) == ("4", "1280x720", "Now in a golden sunset")
    media = probe_mp4(client.videos.download_content(remix.id).read())
    assert (media["width"], media["height"]) == (1280, 720)


def test_a_retried_create_with_the_same_idempotency_key_returns_the_same_job(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)

    first = client.videos.create(prompt="Once", extra_headers={"Idempotency-Key": "abc-1"})
    second = client.videos.create(prompt="Once", extra_headers={"Idempotency-Key": "abc-1"})

    assert first.id == second.id
    assert VideoJob.objects.filter(user=alice.user).count() == 1


def test_a_player_can_fetch_byte_ranges_of_the_video(live_stack: LiveStack, alice: Member) -> None:
    video = sdk(live_stack.url, alice.key).videos.create_and_poll(prompt="Seekable")
    url = f"{live_stack.url}/v1/videos/{video.id}/content"
    auth = {"Authorization": f"Bearer {alice.key}"}
    whole = httpx.get(url, headers=auth).content

    middle = httpx.get(url, headers={**auth, "Range": "bytes=100-199"})
    tail = httpx.get(url, headers={**auth, "Range": "bytes=-50"})
    beyond = httpx.get(url, headers={**auth, "Range": f"bytes={len(whole)}-"})

    assert (middle.status_code, middle.content) == (206, whole[100:200])
    assert middle.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert (tail.status_code, tail.content) == (206, whole[-50:])
    assert beyond.status_code == 416
