"""Media on S3, the storage a deployment on several machines uses.

django-storages and boto3 are the real clients, talking HTTP to moto's S3 server in a thread of
this process: no S3 or MinIO runs on this machine, so the server is the one stand-in. Covered:
a finished video's files stored under their fixed names, served by a short-lived signed URL
that only the author is given, and deleted in one DeleteObjects request when the video is
withdrawn; a cameo's reference crops sealed in the bucket and erased with it; the sweep of
recordings no check refers to, which lists a "folder" S3 only knows as a prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from cameos.actions.checks import RECORDINGS_FOLDER, do_delete_orphan_recordings
from cameos.actions.erasure import do_erase_biometrics
from cameos.crypto import read_sealed
from cameos.models import ReferenceImage
from generation.actions.withdrawal import do_withdraw_videos
from generation.storage import OUTPUT_FILES, output_name
from sora_social.settings import s3_media_storage
from tests.cameos.cameos import registered_cameo
from tests.cameos.videos import passed_without_rendering, request_video
from tests.conftest import Member

pytestmark = pytest.mark.django_db

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Bucket:
    """The bucket the media storage of one test uses, and the S3 requests made to it."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.name = name
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                                   **CREDENTIALS)
        self.client.create_bucket(Bucket=name)
        self.requests: list[str] = []

    def keys(self) -> set[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return {item["Key"] for item in listing.get("Contents", [])}

    def count(self, event_name: str, **_kwargs: Any) -> None:
        self.requests.append(event_name.rsplit(".", 1)[-1])


@pytest.fixture
def bucket(s3_endpoint: str, settings: Any) -> Bucket:
    """A fresh bucket, and the media storage pointed at it as S3_BUCKET would point it."""
    bucket = Bucket(s3_endpoint, f"media-{uuid.uuid4().hex[:12]}")
    settings.S3_BUCKET = bucket.name
    settings.STORAGES = {**settings.STORAGES, "default": s3_media_storage(
        bucket.name, endpoint_url=s3_endpoint, region=REGION,
        access_key=CREDENTIALS["aws_access_key_id"],
        secret_key=CREDENTIALS["aws_secret_access_key"], signed_url_seconds=60,
    )}
    # Every request the storage's own client makes, by operation name.
    default_storage.connection.meta.client.meta.events.register("before-call.s3", bucket.count)
    return bucket


def test_a_video_is_stored_served_by_signed_url_to_its_author_and_deleted_in_one_request(
    bucket: Bucket, alice: Member, bob: Member, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    videos = [passed_without_rendering(request_video(bob, f"a kite {n}"), tmp_path)
              for n in range(2)]
    names = {output_name(video.pk, variant) for video in videos for variant in OUTPUT_FILES}
    assert names <= bucket.keys()

    response = bob.api().get(f"/v1/videos/{videos[0].pk}/content")

    assert response.status_code == 302
    signed = response["Location"]
    assert "Signature=" in signed and "Expires=" in signed
    assert httpx.get(signed).content == f"video of {videos[0].pk}".encode()
    unsigned = signed.split("?", 1)[0]
    assert httpx.get(unsigned).status_code == 403  # the bucket itself is private
    assert alice.api().get(f"/v1/videos/{videos[0].pk}/content").status_code == 404

    bucket.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        report = do_withdraw_videos([video.pk for video in videos], code="removed",
                                    message="Removed.")

    assert sorted(report.withdrawn) == sorted(video.pk for video in videos)
    assert bucket.requests == ["DeleteObjects"]
    assert not names & bucket.keys()


def test_reference_crops_are_sealed_in_the_bucket_and_erased_with_the_face_data(
    bucket: Bucket, alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    cameo = registered_cameo(alice.user)
    [reference] = ReferenceImage.objects.filter(cameo=cameo).values_list("file", flat=True)
    sealed = bucket.client.get_object(Bucket=bucket.name, Key=reference)["Body"].read()
    assert not sealed.startswith(b"\x89PNG")
    assert read_sealed(reference).startswith(b"\x89PNG")

    with django_capture_on_commit_callbacks(execute=True):
        do_erase_biometrics(cameo, why="revoked")

    assert reference not in bucket.keys()


def test_recordings_no_check_refers_to_are_swept_from_the_bucket(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert do_delete_orphan_recordings() == 0  # nothing uploaded yet: no folder, no error
    orphan = default_storage.save(f"{RECORDINGS_FOLDER}/orphan.sealed", ContentFile(b"x"))
    assert do_delete_orphan_recordings() == 0  # too recent to be an orphan
    # S3 sets the time a file was written; make every file old enough instead.
    monkeypatch.setattr("cameos.actions.checks.ORPHAN_RECORDING_SECONDS", -60)

    assert do_delete_orphan_recordings() == 1

    assert orphan not in bucket.keys()
