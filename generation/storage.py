"""Where a job's files live in the media storage: one fixed name per job and variant, so a
render that runs twice overwrites instead of adding a second copy."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from generation.models import VideoJob

logger = logging.getLogger(__name__)

OUTPUT_FILES = {
    "video": ("video.mp4", "video/mp4"),
    "thumbnail": ("thumbnail.webp", "image/webp"),
    "spritesheet": ("spritesheet.jpg", "image/jpeg"),
}


def input_reference_name(job_id: str) -> str:
    return f"inputs/{job_id}/reference.png"


def output_name(job_id: str, variant: str) -> str:
    return f"videos/{job_id}/{OUTPUT_FILES[variant][0]}"


def content_type(variant: str) -> str:
    return OUTPUT_FILES[variant][1]


def store_output(job_id: str, variant: str, local_path: Path) -> str:
    name = output_name(job_id, variant)
    with open(local_path, "rb") as handle:
        stored = default_storage.save(name, File(handle, name=name))
    if stored != name:
        raise RuntimeError(f"storage renamed {name} to {stored}; it must allow overwriting")
    return stored


def copy_from_storage(name: str, destination: Path) -> Path:
    with default_storage.open(name, "rb") as source, open(destination, "wb") as target:
        shutil.copyfileobj(source, target)
    return destination


# S3's DeleteObjects takes at most this many keys a request.
S3_DELETE_BATCH = 1000


def delete_names(names: list[str]) -> None:
    """Delete these files from the media storage (a file already gone is no error); a failure
    is logged, never raised: this runs after the commit that made the files unwanted. On S3,
    one request per S3_DELETE_BATCH files, not one per file."""
    names = [name for name in names if name]
    if isinstance(default_storage, S3Storage):
        _delete_from_s3(default_storage, names)
        return
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete %s", name)


def _delete_from_s3(storage: S3Storage, names: list[str]) -> None:
    for start in range(0, len(names), S3_DELETE_BATCH):
        # The key of a name as S3Storage.delete computes it (its location prefix included).
        keys = [{"Key": storage._normalize_name(clean_name(name))}
                for name in names[start:start + S3_DELETE_BATCH]]
        try:
            response = storage.bucket.delete_objects(Delete={"Objects": keys, "Quiet": True})
        except (BotoCoreError, ClientError):
            logger.exception("could not delete %d files from S3", len(keys))
            continue
        for error in response.get("Errors", []):
            logger.error("could not delete %s from S3: %s", error.get("Key"),
                         error.get("Message"))


def job_file_names(job: VideoJob) -> list[str]:
    names = [job.input_reference.name or ""]
    names += [output_name(job.id, variant) for variant in OUTPUT_FILES]
    return names


def delete_job_files_after_commit(*jobs: VideoJob) -> None:
    names = [name for job in jobs for name in job_file_names(job)]
    transaction.on_commit(lambda: delete_names(names))
