"""Where a job's files live in the media storage: one fixed name per job and variant, so a
render that runs twice overwrites instead of adding a second copy."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

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


def delete_names(names: list[str]) -> None:
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete %s", name)


def job_file_names(job: VideoJob) -> list[str]:
    names = [job.input_reference.name or ""]
    names += [output_name(job.id, variant) for variant in OUTPUT_FILES]
    return names


def delete_job_files_after_commit(*jobs: VideoJob) -> None:
    names = [name for job in jobs for name in job_file_names(job)]
    transaction.on_commit(lambda: delete_names(names))
