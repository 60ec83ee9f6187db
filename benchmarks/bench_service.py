"""Service benchmarks against real processes: dispatch latency, API overhead, create throughput.

Runs its own web server and workers on an embedded PostgreSQL and Redis under var/bench (or
DATABASE_URL / REDIS_URL if set), never touching the `make run` data.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = ROOT / "var" / "bench"
WEB_PROCESSES = 2  # as `make run` starts by default (WEB_CONCURRENCY)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _setup_django() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("VAR_DIR", str(BENCH_VAR))
    os.environ.setdefault("EMBEDDED_REDIS_PORT", "6392")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")
    os.environ["CREATE_RATE_LIMIT_PER_MINUTE"] = "1000000"
    os.environ["DAILY_GENERATION_QUOTA"] = "1000000"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


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


async def _hammer_create(url: str, key: str, clients: int, requests: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    async def one_client(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            response = await http.post(
                "/v1/videos", files={"prompt": (None, "throughput"), "seconds": (None, "4")}
            )
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
    ) as http:
        await asyncio.gather(*(one_client(http) for _ in range(clients)))  # warm-up
        remaining = requests
        latencies.clear()
        statuses.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one_client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50": _percentile(latencies, 0.5),
        "p99": _percentile(latencies, 0.99),
        "statuses": statuses,
    }


def run(jobs: int = 10, create_requests: int = 2000, create_runs: int = 3) -> dict[str, Any]:
    _setup_django()
    from django.conf import settings
    from openai import OpenAI

    from sora_social.accounts.actions import do_create_user, do_issue_api_key
    from sora_social.accounts.models import User
    from sora_social.processes import ProcessGroup, scheduler_command, web_command, worker_command

    user = User.objects.filter(handle="bench").first()
    if user is None:
        user = do_create_user(handle="bench", password=None)
    key = do_issue_api_key(user, name="bench").secret
    port = _free_port()
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
        runs = [
            asyncio.run(_hammer_create(url, key, clients=32, requests=create_requests))
            for _ in range(create_runs)
        ]
        results["create"] = runs
    finally:
        group.stop()
        from sora_social.redis import redis_client

        redis_client().delete("gpu")  # the messages of the throughput runs
    return results


def summarize(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    jobs = results["jobs"]
    create = results["create"]
    rps = statistics.median(run["rps"] for run in create)
    p99 = statistics.median(run["p99"] for run in create)
    p50 = statistics.median(run["p50"] for run in create)
    statuses: dict[int, int] = {}
    for run in create:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
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
         f"{rps:.0f} req/s (median of {len(create)} runs; statuses {statuses})", ">= 150 req/s"),
        ("POST /v1/videos latency, 32 clients",
         f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms", "p99 <= 150 ms"),
    ]


if __name__ == "__main__":
    for row in summarize(run()):
        print(" | ".join(row))
    sys.exit(0)
