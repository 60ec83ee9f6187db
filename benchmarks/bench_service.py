"""Service benchmarks against real processes: dispatch latency and API overhead per job.

Runs its own web server and workers on an embedded PostgreSQL and Redis under var/bench, never
touching the `make run` data. Create throughput is measured by bench_throughput.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = ROOT / "var" / "bench"
WEB_PROCESSES = 2  # as `make run` starts by default (WEB_CONCURRENCY)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def setup_django() -> None:
    """Django on the benchmark's own embedded servers, migrated and wiped."""
    import logging

    # Always the embedded servers under var/bench: the benchmark wipes their data.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["VAR_DIR"] = str(BENCH_VAR)
    os.environ["EMBEDDED_REDIS_PORT"] = os.environ.get("BENCH_REDIS_PORT", "6392")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")
    os.environ["CREATE_RATE_LIMIT_PER_MINUTE"] = "1000000"
    os.environ["DAILY_GENERATION_QUOTA"] = "1000000"
    import django

    django.setup()
    # Not a line per polling request (the SDK's HTTP client is httpx2; the probes use httpx).
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    wipe()


def wipe() -> None:
    """Forget every job and message of earlier runs, so no backlog skews the figures."""
    from generation.models import VideoJob
    from sora_social.redis import redis_client

    VideoJob.objects.all().delete()
    redis_client().flushdb()


def _job_timings(client: Any, count: int) -> dict[str, list[float]]:
    from generation.models import VideoJob

    dispatch, overhead = [], []
    for number in range(count):
        video = client.videos.create_and_poll(
            prompt=f"benchmark clip {number}", seconds="4", size="720x1280", poll_interval_ms=50
        )
        assert video.status == "completed", video.error
        job = VideoJob.objects.get(pk=video.id)
        assert job.started_at and job.completed_at and job.render_seconds is not None
        dispatch.append((job.started_at - job.created_at).total_seconds())
        total = (job.completed_at - job.created_at).total_seconds()
        overhead.append(total - job.render_seconds)
    return {"dispatch": dispatch, "overhead": overhead}


def run(jobs: int = 10) -> dict[str, Any]:
    setup_django()
    from django.conf import settings
    from openai import OpenAI

    from sora_social.accounts.actions import do_create_user, do_issue_api_key
    from sora_social.accounts.models import User
    from sora_social.processes import (
        ProcessGroup,
        free_port,
        scheduler_command,
        web_command,
        worker_command,
    )

    user = User.objects.filter(handle="bench").first()
    if user is None:
        user = do_create_user(handle="bench", password=None)
    key = do_issue_api_key(user, name="bench").secret
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONPATH": str(ROOT),
    }
    group = ProcessGroup(env=env, log_dir=BENCH_VAR / "logs")
    results: dict[str, Any] = {}
    try:
        for number in range(WEB_PROCESSES):
            group.start(f"web-{number}", web_command("127.0.0.1", port))
        group.start("gpu-worker", worker_command("gpu", name=f"bench-gpu-{port}@%h"))
        group.start("cpu-worker", worker_command("default", name=f"bench-default-{port}@%h"))
        group.start("scheduler", scheduler_command(BENCH_VAR / "celerybeat-schedule"))
        group.wait_healthy(url)
        client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        client.videos.create_and_poll(prompt="warm-up", poll_interval_ms=50)
        results["jobs"] = _job_timings(client, jobs)
    finally:
        group.stop()
    return results


def summarize(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    jobs = results["jobs"]
    return [
        ("dispatch latency p50 (created -> in_progress)",
         f"{statistics.median(jobs['dispatch']) * 1000:.0f} ms "
         f"(p90 {_percentile(jobs['dispatch'], 0.9) * 1000:.0f} ms, n={len(jobs['dispatch'])})",
         "<= 150 ms"),
        ("API overhead per job p50 (completed - render)",
         f"{statistics.median(jobs['overhead']) * 1000:.0f} ms "
         f"(p90 {_percentile(jobs['overhead'], 0.9) * 1000:.0f} ms)",
         "<= 500 ms"),
    ]


if __name__ == "__main__":
    for row in summarize(run()):
        print(" | ".join(row))
    sys.exit(0)
