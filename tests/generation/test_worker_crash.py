"""A render worker killed with SIGKILL mid-render: the job still completes, exactly once, with
exactly one stored video."""

from __future__ import annotations

import pytest

from generation.models import VideoJob
from generation.tasks import render_video_task
from tests.conftest import LiveStack, Member
from tests.generation.videos import probe_mp4, sdk, stored_files
from tests.private_servers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_job_survives_its_worker_being_killed(live_stack: LiveStack, alice: Member) -> None:
    client = sdk(live_stack.url, alice.key)
    video = client.videos.create(prompt="Survive the crash", seconds="12", size="1280x720")
    wait_for(
        lambda: VideoJob.objects.filter(pk=video.id, status="in_progress", progress__gt=0).exists(),
        timeout=60,
        what="the render to be under way",
    )

    live_stack.kill_gpu_worker()
    killed = VideoJob.objects.get(pk=video.id)
    assert (killed.status, killed.attempts) == ("in_progress", 1)
    live_stack.start_gpu_worker()
    finished = client.videos.poll(video.id, poll_interval_ms=250)
    # The killed worker's message is still unacknowledged in Redis and comes back once the
    # broker's visibility timeout passes; deliver that duplicate now and see it change nothing.
    render_video_task.delay(video.id)
    worker_log = live_stack.group.log_dir / "gpu-worker.log"  # type: ignore[operator]
    wait_for(
        lambda: f"job {video.id} is not queued" in worker_log.read_text(errors="replace"),
        timeout=30,
        what="the duplicate delivery to be ignored",
    )

    job = VideoJob.objects.get(pk=video.id)
    assert finished.status == "completed", finished.error
    assert (job.status, job.attempts, job.progress) == ("completed", 2, 100)
    assert job.completed_at is not None
    assert int(job.completed_at.timestamp()) == finished.completed_at
    assert stored_files(video.id) == [
        f"videos/{video.id}/spritesheet.jpg",
        f"videos/{video.id}/thumbnail.webp",
        f"videos/{video.id}/video.mp4",
    ]
    media = probe_mp4(client.videos.download_content(video.id).read())
    assert media["frames"] == 12 * 24


def test_a_job_survives_its_output_check_worker_being_killed(
    live_stack: LiveStack, alice: Member
) -> None:
    client = sdk(live_stack.url, alice.key)
    video = client.videos.create(prompt="Checked twice, kept once", seconds="12",
                                 size="720x1280")
    wait_for(
        lambda: VideoJob.objects.filter(pk=video.id, stage="output_check",
                                        lease_token__isnull=False).exists(),
        timeout=120,
        what="the output check to be under way",
    )

    live_stack.kill_cpu_worker()
    killed = VideoJob.objects.get(pk=video.id)
    assert (killed.status, killed.stage, killed.check_attempts, killed.progress) == (
        "in_progress", "output_check", 1, 99)
    live_stack.start_cpu_worker()
    finished = client.videos.poll(video.id, poll_interval_ms=250)

    job = VideoJob.objects.get(pk=video.id)
    assert finished.status == "completed", finished.error
    # Rendered once; checked again once its lease ran out (the reaper sent it again).
    assert (job.status, job.attempts, job.check_attempts) == ("completed", 1, 2)
    assert stored_files(video.id) == [
        f"videos/{video.id}/spritesheet.jpg",
        f"videos/{video.id}/thumbnail.webp",
        f"videos/{video.id}/video.mp4",
    ]
