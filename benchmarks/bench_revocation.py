"""Revoking a cameo that appears in 1,000 videos: the owner's request, then the cascade.

The issue's target: every embedding of the cameo gone within one minute of the request. The
cascade (withdrawing the videos and their remixes, cancelling the renders in flight) runs in the
background in batches of REVOCATION_BATCH_SIZE; its time is reported as measured, at several
batch sizes.

Each repeat builds fresh data: alice's verified person cameo (real embeddings of scikit-image's
astronaut from the configured face engine, 3 references), 50 other authors with verified cameos
(synthetic embeddings, so the 1:N search has others to return), 1,000 completed videos by those
authors that show alice, 50 remixes of some of them (40 of her videos, 10 of those remixes;
remixes carry no appearance of their own, so the lineage walk is what reaches them) and 20 jobs
tagging her still queued or being checked. Every completed video and every job being checked
has its three output files (small, real) under the job's output names, so their deletion is
part of the time.

Measured per repeat: `do_revoke_cameo` (the request: revocation, erasure, receipt, and what
runs on its commit), the time until no FaceVector row of hers is left and the 1:N search (over
every status) no longer returns her; then `do_run_revocation_cascade` until its rows are
written, verified by counting rows and files; then a second cascade run (a no-op, as it must be).

The database is the benchmarks' own (`bench_service.setup_django`: embedded PostgreSQL and
Redis under var/bench, migrated, owned by this process and stopped when it exits; never the
`make run` data); the media folder is var/bench/revocation/media, removed at the end. Everything
a repeat creates (users prefixed `revbench_`, and with them their cameos, jobs and
notifications; the files; the cascade's Celery message, which nothing consumes here) is removed
after it, pass or fail.

    python -m benchmarks.bench_revocation
    python -m benchmarks.bench_revocation --repeats 1 --batch-sizes 200   # a quick trial
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.crowd import machine_load

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench" / "revocation"
MEDIA_DIR = BENCH_DIR / "media"
HANDLE_PREFIX = "revbench_"

VIDEOS = 1000
FIRST_REMIXES = 40  # remixes of alice's videos
SECOND_REMIXES = 10  # remixes of those remixes
QUEUED = 10
CHECKING = 10  # in progress, stage output_check: their files are stored
AUTHORS = 50
AUTHOR_REFERENCES = 3
REFERENCE_SCALES = (1.0, 0.85, 0.7)  # three captures of alice: the astronaut at three sizes
# Small stand-ins for a job's three outputs (video.mp4, thumbnail.webp, spritesheet.jpg).
OUTPUT_BYTES = {"video": 16_384, "thumbnail": 2_048, "spritesheet": 8_192}

REPEATS = 3
BATCH_SIZES = (50, 200, 500)
EMBEDDINGS_TARGET_S = 60.0


# --- Set-up -------------------------------------------------------------------------------------


def reference_faces(engine: Any) -> list[Any]:
    """Alice's references: the astronaut's face found at each scale, cropped as the liveness
    check crops references, with the engine's embedding of it."""
    import cv2

    from cameos.faces.calibration import astronaut
    from cameos.liveness.check import ReferenceFace, reference_crop

    faces = []
    for scale in REFERENCE_SCALES:
        image = astronaut()
        if scale != 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        face = engine.detect(image)[0]
        faces.append(ReferenceFace(image=reference_crop(image, face),
                                   embedding=engine.embed(image, face), time=0.0))
    return faces


@dataclass
class Scene:
    alice: Any
    cameo_id: str
    probe: np.ndarray  # one of her embeddings, as stored
    videos: list[str]
    remixes: list[str]
    active: list[str]
    files: int
    setup_s: float


def _synthetic_vectors(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _write_outputs(job_ids: list[str]) -> int:
    from generation.storage import output_name

    written = 0
    for job_id in job_ids:
        for variant, size in OUTPUT_BYTES.items():
            path = MEDIA_DIR / output_name(job_id, variant)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(size))
            written += 1
    return written


def _job(author: Any, status: str, *, remixed_from: Any = None, **fields: Any) -> Any:
    from django.utils import timezone

    from generation.actions.quota import quota_today
    from generation.models import VideoJob
    from generation.storage import output_name

    job = VideoJob(
        user=author, status=status, model="sora-2", prompt="@alice waves from a canoe",
        seconds=4, width=720, height=1280, seed=7, quota_day=quota_today(),
        remixed_from=remixed_from,
        remix_source_name=remixed_from.video.name if remixed_from else "", **fields,
    )
    if status == VideoJob.Status.COMPLETED:
        now = timezone.now()
        job.stage = VideoJob.Stage.OUTPUT_CHECK
        job.progress, job.started_at, job.completed_at, job.render_seconds = 100, now, now, 3.1
    if status == VideoJob.Status.COMPLETED or job.stage == VideoJob.Stage.OUTPUT_CHECK:
        job.video = output_name(job.id, "video")
        job.thumbnail = output_name(job.id, "thumbnail")
        job.spritesheet = output_name(job.id, "spritesheet")
    return job


def build_scene(engine: Any, faces: list[Any], seed: int) -> Scene:
    """Alice's cameo in VIDEOS videos, with remixes and renders in flight (see the docstring)."""
    import datetime

    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from cameos.actions.checks import do_verify_cameo
    from cameos.actions.registration import do_start_registration
    from cameos.consent import NOTICE_VERSION
    from cameos.models import Appearance, Cameo, FaceVector
    from generation.actions.quota import quota_today
    from generation.models import DailyGenerationUsage, VideoJob
    from sora_social.accounts.actions import do_create_user
    from sora_social.accounts.models import User

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with transaction.atomic():
        authors = User.objects.bulk_create(
            User(handle=f"{HANDLE_PREFIX}author{number}", display_name=f"author {number}",
                 password=make_password(None))  # unusable, and no hashing
            for number in range(AUTHORS)
        )
        author_cameos = Cameo.objects.bulk_create(
            Cameo(owner=author, kind=Cameo.Kind.PERSON, handle=author.handle,
                  name=author.display_name, status=Cameo.Status.VERIFIED,
                  face_engine=engine.id, verified_at=timezone.now())
            for author in authors
        )
        vectors = _synthetic_vectors(rng, AUTHORS * AUTHOR_REFERENCES, engine.dimension)
        FaceVector.objects.bulk_create(
            FaceVector(cameo=author_cameos[row // AUTHOR_REFERENCES], engine=engine.id,
                       dimension=engine.dimension, embedding=vectors[row])
            for row in range(len(vectors))
        )
    alice = do_create_user(handle=f"{HANDLE_PREFIX}alice", password=None, display_name="alice")
    cameo = do_start_registration(alice, notice_version=NOTICE_VERSION,
                                  client="bench_revocation").cameo
    status = do_verify_cameo(None, cameo, faces, engine)
    if status != Cameo.Status.VERIFIED:
        raise RuntimeError(f"alice's cameo is {status}, not verified")

    videos = [_job(authors[number % AUTHORS], VideoJob.Status.COMPLETED)
              for number in range(VIDEOS)]
    step = VIDEOS // FIRST_REMIXES
    first = [_job(authors[(number * step + 1) % AUTHORS], VideoJob.Status.COMPLETED,
                  remixed_from=videos[number * step]) for number in range(FIRST_REMIXES)]
    second = [_job(authors[(number + 7) % AUTHORS], VideoJob.Status.COMPLETED,
                   remixed_from=first[number]) for number in range(SECOND_REMIXES)]
    lease = {"lease_token": uuid.uuid4(),
             "lease_until": timezone.now() + datetime.timedelta(minutes=5)}
    active = [_job(authors[number], VideoJob.Status.QUEUED) for number in range(QUEUED)] + [
        _job(authors[number], VideoJob.Status.IN_PROGRESS, stage=VideoJob.Stage.OUTPUT_CHECK,
             progress=100, **lease)
        for number in range(CHECKING)
    ]
    with transaction.atomic():
        VideoJob.objects.bulk_create([*videos, *first, *second, *active], batch_size=500)
        Appearance.objects.bulk_create(
            (Appearance(video=job, cameo=cameo, source=Appearance.Source.TAGGED, tag_position=1,
                        consent_decision=Appearance.ConsentDecision.ALLOWED)
             for job in [*videos, *active]),
            batch_size=500,
        )
        jobs_per_author: dict[int, int] = {}
        for job in [*videos, *first, *second, *active]:
            jobs_per_author[job.user_id] = jobs_per_author.get(job.user_id, 0) + 1
        DailyGenerationUsage.objects.bulk_create(
            DailyGenerationUsage(user_id=user_id, day=quota_today(), used=used)
            for user_id, used in jobs_per_author.items()
        )
    files = _write_outputs([job.id for job in [*videos, *first, *second, *active]
                            if job.video.name])
    probe = np.asarray(FaceVector.objects.filter(cameo=cameo).order_by("pk")
                       .values_list("embedding", flat=True)[0], dtype=np.float32)
    return Scene(
        alice=alice, cameo_id=cameo.pk, probe=probe, videos=[job.id for job in videos],
        remixes=[job.id for job in [*first, *second]], active=[job.id for job in active],
        files=files, setup_s=time.perf_counter() - started,
    )


def _files_left(under: Path = Path("videos")) -> int:
    folder = MEDIA_DIR / under
    return sum(len(files) for _root, _dirs, files in os.walk(folder)) if folder.exists() else 0


def clean_up() -> None:
    """Remove what a repeat made: the bench users (and, cascading, everything of theirs), the
    files and the cascade's Celery message nobody consumes."""
    from generation.models import VideoJob
    from sora_social.accounts.models import User
    from sora_social.celery import app

    mine = User.objects.filter(handle__startswith=HANDLE_PREFIX)
    # Jobs first: remixes point at their sources (SET_NULL), cheaper gone together.
    VideoJob.objects.filter(user__in=mine).delete()
    mine.delete()
    app.control.purge()
    shutil.rmtree(MEDIA_DIR, ignore_errors=True)


# --- Measuring ----------------------------------------------------------------------------------


def _search_finds(engine: Any, cameo_id: str, vector: np.ndarray) -> bool:
    """Whether the 1:N search returns the cameo, whatever its status (so what is measured is
    the embeddings, not the status filter)."""
    from cameos.models import Cameo
    from cameos.search import nearest_cameos

    matches = nearest_cameos(engine, vector, limit=10, statuses=list(Cameo.Status.values))
    return any(match.cameo_id == cameo_id for match in matches)


def measure(engine: Any, scene: Scene, batch_size: int) -> dict[str, Any]:
    """Revoke alice's cameo, then run the cascade; timings, and the counts they are checked by."""
    from cameos.actions.revocation import (
        REVOKED_CODE,
        do_revoke_cameo,
        do_run_revocation_cascade,
    )
    from cameos.models import DeletionReceipt, FaceVector
    from generation.actions.withdrawal import SOURCE_WITHDRAWN
    from generation.models import DailyGenerationUsage, VideoJob

    if FaceVector.objects.filter(cameo_id=scene.cameo_id).count() != len(REFERENCE_SCALES):
        raise RuntimeError("alice's embeddings are not all there before the revocation")
    if not _search_finds(engine, scene.cameo_id, scene.probe):
        raise RuntimeError("the search does not find alice before the revocation")
    quota_used = sum(DailyGenerationUsage.objects.filter(
        user__handle__startswith=HANDLE_PREFIX).values_list("used", flat=True))

    started = time.perf_counter()
    do_revoke_cameo(scene.alice, scene.cameo_id)
    requested = time.perf_counter()
    vectors_left = FaceVector.objects.filter(cameo_id=scene.cameo_id).count()
    still_found = _search_finds(engine, scene.cameo_id, scene.probe)
    embeddings_gone = time.perf_counter()
    crops_left = _files_left(Path("cameos") / scene.cameo_id)
    if vectors_left or still_found or crops_left:
        raise RuntimeError(f"after the request: {vectors_left} vectors, {crops_left} crops, "
                           f"found={still_found}")

    cascade_started = time.perf_counter()
    receipt = do_run_revocation_cascade(scene.cameo_id, batch_size=batch_size)
    if receipt is None:
        raise RuntimeError("the revocation left no receipt")
    cascaded = time.perf_counter()
    jobs = VideoJob.objects.filter(pk__in=[*scene.videos, *scene.remixes, *scene.active])
    withdrawn = jobs.filter(pk__in=scene.videos, withdrawn_at__isnull=False,
                            withdrawal_reason=REVOKED_CODE).count()
    remixes = jobs.filter(pk__in=scene.remixes, withdrawn_at__isnull=False,
                          withdrawal_reason=SOURCE_WITHDRAWN).count()
    cancelled = jobs.filter(pk__in=scene.active, status=VideoJob.Status.CANCELLED,
                            error_code=REVOKED_CODE).count()
    files_left = _files_left()
    verified = time.perf_counter()
    expected = (VIDEOS, FIRST_REMIXES + SECOND_REMIXES, QUEUED + CHECKING, 0)
    if (withdrawn, remixes, cancelled, files_left) != expected:
        raise RuntimeError(f"withdrawn, remixes, cancelled, files left: {withdrawn}, {remixes}, "
                           f"{cancelled}, {files_left}; expected {expected}")
    if receipt.completed_at is None or len(receipt.videos_withdrawn) != VIDEOS + len(
        scene.remixes
    ) or len(receipt.jobs_cancelled) != len(scene.active):
        raise RuntimeError("the receipt does not list what was withdrawn and cancelled")
    refunded = quota_used - sum(DailyGenerationUsage.objects.filter(
        user__handle__startswith=HANDLE_PREFIX).values_list("used", flat=True))

    if refunded != len(scene.active):
        raise RuntimeError(f"{refunded} generations refunded for {len(scene.active)} cancelled")

    rerun_started = time.perf_counter()
    again = do_run_revocation_cascade(scene.cameo_id, batch_size=batch_size)
    if again is None:
        raise RuntimeError("the receipt is gone")
    rerun_s = time.perf_counter() - rerun_started
    if again.completed_at != receipt.completed_at:
        raise RuntimeError("a second cascade run wrote the receipt again")
    DeletionReceipt.objects.get(cameo_id=scene.cameo_id)  # still one receipt
    rows = withdrawn + remixes + cancelled
    return {
        "request_s": requested - started,
        "embeddings_gone_s": embeddings_gone - started,
        "cascade_s": cascaded - cascade_started,
        "cascade_verified_s": verified - cascade_started,
        "rerun_s": rerun_s,
        "rows_per_s": rows / (cascaded - cascade_started),
        "videos_withdrawn": withdrawn,
        "remixes_withdrawn": remixes,
        "jobs_cancelled": cancelled,
        "quota_refunded": refunded,
        "files_deleted": scene.files - files_left,
        "setup_s": scene.setup_s,
    }


@dataclass(frozen=True)
class Summary:
    batch_size: int
    runs: list[dict[str, Any]]

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)

    def max(self, key: str) -> float:
        return max(run[key] for run in self.runs)


def run(repeats: int = REPEATS, batch_sizes: tuple[int, ...] = BATCH_SIZES,
        report: Any = None) -> dict[str, Any]:
    """Every batch size, `repeats` times on fresh data each."""
    if repeats < 1 or not batch_sizes:
        raise ValueError("at least one repeat and one batch size")
    from benchmarks import bench_service

    bench_service.setup_django()
    from django.conf import settings
    from django.test import override_settings

    from cameos.faces import get_engine

    storages = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_DIR), "base_url": None, "allow_overwrite": True},
    }}
    engine = get_engine()
    faces = reference_faces(engine)
    load_before = machine_load()
    summaries = []
    with override_settings(STORAGES=storages, MEDIA_ROOT=MEDIA_DIR):
        clean_up()  # what a run cut short left
        for batch_size in batch_sizes:
            runs = []
            for repeat in range(repeats):
                try:
                    scene = build_scene(engine, faces, seed=repeat)
                    runs.append(measure(engine, scene, batch_size))
                finally:
                    clean_up()
                if report:
                    report(f"batch {batch_size}, run {repeat + 1}: {_describe_run(runs[-1])}")
            summaries.append(Summary(batch_size, runs))
    shutil.rmtree(BENCH_DIR, ignore_errors=True)
    return {"summaries": summaries, "load_before": load_before, "load_after": machine_load(),
            "engine": engine.id, "default_batch_size": settings.REVOCATION_BATCH_SIZE}


def _describe_run(figures: dict[str, Any]) -> str:
    return (f"request {figures['request_s']:.3f} s, embeddings gone "
            f"{figures['embeddings_gone_s']:.3f} s, cascade {figures['cascade_s']:.2f} s "
            f"({figures['rows_per_s']:.0f} rows/s), setup {figures['setup_s']:.1f} s")


def _seconds(summary: Summary, key: str, digits: int = 2) -> str:
    return f"{summary.median(key):.{digits}f} / {summary.max(key):.{digits}f}"


def table(results: dict[str, Any]) -> str:
    """One line per batch size: medians / maxima over the repeats."""
    columns = ("batch", "videos", "remixes", "cancelled", "files del.", "request s",
               "embeddings gone s", "cascade s", "cascade+verify s", "rows/s", "rerun s",
               "setup s")
    lines = [" | ".join(columns)]
    for summary in results["summaries"]:
        last = summary.runs[-1]
        lines.append(" | ".join((
            f"{summary.batch_size}", f"{last['videos_withdrawn']}",
            f"{last['remixes_withdrawn']}", f"{last['jobs_cancelled']}",
            f"{last['files_deleted']}", _seconds(summary, "request_s", 3),
            _seconds(summary, "embeddings_gone_s", 3), _seconds(summary, "cascade_s"),
            _seconds(summary, "cascade_verified_s"), f"{summary.median('rows_per_s'):.0f}",
            _seconds(summary, "rerun_s", 3), _seconds(summary, "setup_s", 1),
        )))
    return "\n".join(lines)


def summarize(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows for `make bench`: (benchmark, measured, target)."""
    summaries: list[Summary] = results["summaries"]
    default = next((summary for summary in summaries
                    if summary.batch_size == results["default_batch_size"]), summaries[0])
    runs = len(default.runs)
    rows = [
        (
            f"revoke a cameo in {VIDEOS:,} videos: request until embeddings gone",
            f"median {default.median('embeddings_gone_s'):.2f} s "
            f"(max {default.max('embeddings_gone_s'):.2f}, {runs} runs)",
            f"<= {EMBEDDINGS_TARGET_S:.0f} s",
        )
    ]
    for summary in summaries:
        rows.append((
            f"revocation cascade, {VIDEOS:,} videos + {FIRST_REMIXES + SECOND_REMIXES} remixes "
            f"+ {QUEUED + CHECKING} renders, batch {summary.batch_size}",
            f"median {summary.median('cascade_s'):.2f} s (max {summary.max('cascade_s'):.2f}, "
            f"{summary.median('rows_per_s'):.0f} rows/s)",
            "measured only",
        ))
    return rows


def main() -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    arguments = parser.parse_args()
    results = run(arguments.repeats, tuple(arguments.batch_sizes),
                  report=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"face engine {results['engine']}; medians / maxima over {arguments.repeats} runs")
    print(f"load before: {results['load_before']}")
    print(f"load after:  {results['load_after']}")
    print(table(results))
    for row in summarize(results):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
