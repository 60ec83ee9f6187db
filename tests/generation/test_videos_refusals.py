"""Every refused /v1/videos request: the OpenAI error shape, the offending parameter named, and
nothing left behind (no job, no file, no quota charge)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from generation.models import DailyGenerationUsage, VideoJob
from sora_social.accounts.actions import do_revoke_api_key
from sora_social.accounts.models import ApiKey
from tests.conftest import LiveStack, Member
from tests.generation.videos import sdk

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _noisy_png(width: int = 256, height: int = 256) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    output = io.BytesIO()
    Image.fromarray(pixels).save(output, format="PNG")
    return output.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 16)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _post(stack: LiveStack, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{stack.url}/v1/videos", headers=headers, timeout=30, **kwargs)


def _assert_nothing_was_created(member: Member, media_root_files_before: int) -> None:
    assert VideoJob.objects.count() == 0
    assert DailyGenerationUsage.objects.filter(user=member.user, used__gt=0).count() == 0
    assert _media_file_count() == media_root_files_before


def _media_file_count() -> int:
    return sum(1 for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file())


@pytest.mark.parametrize(
    ("form", "files", "param", "code"),
    [
        ({}, None, "prompt", "required"),
        ({"prompt": "   "}, None, "prompt", "blank"),
        ({"prompt": "x" * 2001}, None, "prompt", "prompt_too_long"),
        ({"prompt": "ok", "model": "dall-e-9"}, None, "model", "invalid_model"),
        ({"prompt": "ok", "seconds": "5"}, None, "seconds", "invalid_choice"),
        ({"prompt": "ok", "size": "640x480"}, None, "size", "invalid_choice"),
        ({"prompt": "ok", "input_reference[image_url]": "https://example.com/a.png"}, None,
         "input_reference", "unsupported_reference"),
        ({"prompt": "ok"}, {"input_reference": ("a.txt", b"not an image", "text/plain")},
         "input_reference", "invalid_image"),
        ({"prompt": "ok"}, {"input_reference": ("cut.png", _noisy_png()[:100_000], "image/png")},
         "input_reference", "invalid_image"),
        ({"prompt": "ok"},
         {"input_reference": ("big.png", b"\x89PNG" + b"0" * (10 * 1024 * 1024), "image/png")},
         "input_reference", "file_too_large"),
        ({"prompt": "ok"}, {"input_reference": ("bomb.png", _bomb_png(30000, 30000), "image/png")},
         "input_reference", "image_too_large"),
    ],
    ids=["no-prompt", "empty-prompt", "long-prompt", "unknown-model", "bad-seconds", "bad-size",
         "url-reference", "not-an-image", "truncated-image", "too-many-bytes",
         "decompression-bomb"],
)
def test_it_refuses_bad_input_and_keeps_nothing(
    live_stack: LiveStack, alice: Member, form: dict[str, str], files: Any, param: str, code: str
) -> None:
    files_before = _media_file_count()

    response = _post(live_stack, alice.key, data=form, files=files)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"]
    _assert_nothing_was_created(alice, files_before)


def test_it_refuses_a_missing_or_revoked_key_with_401(live_stack: LiveStack, alice: Member) -> None:
    missing = _post(live_stack, None, data={"prompt": "hi"})
    wrong = _post(live_stack, "sk-ss-not-a-key", data={"prompt": "hi"})
    do_revoke_api_key(ApiKey.objects.get(user=alice.user))
    revoked = _post(live_stack, alice.key, data={"prompt": "hi"})

    for response in (missing, wrong, revoked):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert VideoJob.objects.count() == 0


def test_another_users_video_is_not_found_on_every_endpoint(
    live_stack: LiveStack, alice: Member, bob: Member
) -> None:
    video = sdk(live_stack.url, alice.key).videos.create_and_poll(prompt="Alice's own")
    headers = {"Authorization": f"Bearer {bob.key}"}
    base = f"{live_stack.url}/v1/videos/{video.id}"

    responses = [
        httpx.get(base, headers=headers),
        httpx.get(f"{base}/content", headers=headers),
        httpx.get(f"{base}/content?variant=thumbnail", headers=headers),
        httpx.post(f"{base}/remix", headers=headers, json={"prompt": "steal"}),
        httpx.delete(base, headers=headers),
    ]

    assert [response.status_code for response in responses] == [404] * 5
    assert {response.json()["error"]["code"] for response in responses} == {"not_found"}
    assert VideoJob.objects.count() == 1
    assert VideoJob.objects.get().status == "completed"
    listed = httpx.get(f"{live_stack.url}/v1/videos", headers=headers).json()
    assert listed["data"] == []


def test_it_refuses_to_remix_a_video_that_is_not_completed(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)
    # 12 s at the largest size keeps the source busy long enough to ask for its remix.
    source = client.videos.create(prompt="Still rendering", seconds="12", size="1792x1024")

    response = httpx.post(
        f"{live_stack.url}/v1/videos/{source.id}/remix",
        headers={"Authorization": f"Bearer {alice.key}"},
        json={"prompt": "too early"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "video_not_ready"
    assert response.json()["error"]["param"] == "video_id"
    assert VideoJob.objects.count() == 1
    assert DailyGenerationUsage.objects.get(user=alice.user).used == 1
