"""Service benchmarks against real processes: dispatch latency, API overhead, create throughput.

Runs its own web server and workers on an embedded PostgreSQL and Redis under var/bench (or
DATABASE_URL / REDIS_URL if set), never touching the `make run` data.
"""

from __future__ import annotations

import os
import statistics
import subprocess
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


def _setup_django() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
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
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    _wipe()


def _wipe() -> None:
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


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=bench"
wrk.body = "{body}"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %f %f %d %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e6, latency:percentile(99) / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _multipart_body(fields: dict[str, str]) -> str:
    parts = [
        f'--bench\\r\\nContent-Disposition: form-data; name=\\"{name}\\"\\r\\n\\r\\n{value}\\r\\n'
        for name, value in fields.items()
    ]
    return "".join(parts) + "--bench--\\r\\n"


def _hammer_create(url: str, key: str, clients: int, seconds: int) -> dict[str, Any]:
    """POST /v1/videos from `clients` keep-alive connections for `seconds` (wrk, closed loop)."""
    script = BENCH_VAR / "create.lua"
    body = _multipart_body({"prompt": "throughput", "seconds": "4", "size": "720x1280"})
    script.write_text(WRK_SCRIPT.format(key=key, body=body))
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(script), f"{url}/v1/videos"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    requests, duration, p50, p99, non_2xx, socket_errors = line.split()[1:]
    return {
        "rps": int(requests) / float(duration),
        "p50": float(p50),
        "p99": float(p99),
        "non_2xx": int(non_2xx),
        "socket_errors": int(socket_errors),
    }


def run(jobs: int = 10, create_seconds: int = 10, create_runs: int = 3) -> dict[str, Any]:
    _setup_django()
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

        group.kill("gpu-worker")  # nothing consumes the gpu queue during the throughput runs
        _hammer_create(url, key, clients=32, seconds=3)  # warm-up
        runs = [
            _hammer_create(url, key, clients=32, seconds=create_seconds)
            for _ in range(create_runs)
        ]
        results["create"] = runs
    finally:
        group.stop()
        _wipe()  # the thousands of queued jobs of the throughput runs
    return results


def summarize(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    jobs = results["jobs"]
    create = results["create"]
    rps = statistics.median(run["rps"] for run in create)
    p99 = statistics.median(run["p99"] for run in create)
    p50 = statistics.median(run["p50"] for run in create)
    failures = sum(run["non_2xx"] + run["socket_errors"] for run in create)
    return [
        ("dispatch latency p50 (created -> in_progress)",
         f"{statistics.median(jobs['dispatch']) * 1000:.0f} ms "
         f"(p90 {_percentile(jobs['dispatch'], 0.9) * 1000:.0f} ms, n={len(jobs['dispatch'])})",
         "<= 150 ms"),
        ("API overhead per job p50 (completed - render)",
         f"{statistics.median(jobs['overhead']) * 1000:.0f} ms "
         f"(p90 {_percentile(jobs['overhead'], 0.9) * 1000:.0f} ms)",
         "<= 500 ms"),
        ("POST /v1/videos throughput, 32 clients",
         f"{rps:.0f} req/s (median of {len(create)} runs; {failures} failed requests)",
         ">= 150 req/s"),
        ("POST /v1/videos latency, 32 clients",
         f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms", "p99 <= 150 ms"),
    ]


if __name__ == "__main__":
    for row in summarize(run()):
        print(" | ".join(row))
    sys.exit(0)
