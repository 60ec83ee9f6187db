"""`POST /v1/videos` throughput under open-loop load, against a bare DRF insert on the same stack.

For each endpoint, on a fresh set of server processes (two web processes as `make run` starts,
no worker consuming the gpu queue), the offered rate steps from 25 req/s by x1.5 (up while steps
hold, down while they miss) until a rate holds and the next one up misses (p99 > 150 ms, or any
error), then bisects three times between those two; a rate misses only if it misses twice in a
row. Each step is 2 s of warm-up and 8 s measured at a constant rate (benchmarks/openloop.py:
latency from each request's intended start, so a stall is not hidden), and stops early once its
p99 is certain to miss. The figure per endpoint is the highest rate that held; the ratio
create / bare says how much of the framework's own capacity the create path keeps.

Both endpoints get the same requests, as the OpenAI SDK sends `videos.create` (multipart with
prompt, model, seconds and size, and a Bearer API key), spread over several users so no single
user's quota row serialises the creates; the quota and rate limit are set out of the way.

    python -m benchmarks.bench_throughput
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from benchmarks import bench_service
from benchmarks.openloop import LoadResult, http_request, run_load

P99_LIMIT_S = 0.150
START_RATE = 25.0
MIN_RATE = 5.0  # below this the search gives up: something is wrong, not slow
STEP_FACTOR = 1.5
REFINEMENTS = 3
STEP_SECONDS = 8.0
WARMUP_SECONDS = 2.0
# Well under the generator's own ceiling (`python -m benchmarks.openloop self-test`).
MAX_RATE = 3000.0
LOAD_USERS = 16
IDLE_MEDIAN_LATENCY_S = 0.1


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str


BARE = Endpoint("bare DRF insert, same auth (POST /bench/rows)", "/bench/rows")
CREATE = Endpoint("POST /v1/videos", "/v1/videos")


@dataclass
class Search:
    """Every step measured for one endpoint, and the highest rate that held."""

    endpoint: Endpoint
    steps: list[LoadResult] = field(default_factory=list)
    best: LoadResult | None = None
    reached_ceiling: bool = False  # no step missed up to MAX_RATE


def step_holds(result: LoadResult) -> bool:
    return result.errors == 0 and bool(result.latencies_s) and result.latency(0.99) <= P99_LIMIT_S


def search_highest_rate(
    endpoint: Endpoint,
    measure: Callable[[float], LoadResult],
    *,
    start: float = START_RATE,
    factor: float = STEP_FACTOR,
    refinements: int = REFINEMENTS,
    min_rate: float = MIN_RATE,
    max_rate: float = MAX_RATE,
) -> Search:
    """Step the rate by `factor` from `start` (up while steps hold, down while they miss) until
    one rate holds and the next one up misses, then bisect (geometrically) between those two.
    Assumes a higher rate never does better. A rate misses only if it misses twice in a row, so
    one hiccup (a checkpoint, another program) does not end the search early."""
    search = Search(endpoint)

    def holds(rate: float) -> bool:
        for _attempt in range(2):
            result = measure(rate)
            search.steps.append(result)
            if step_holds(result):
                search.best = result  # every rate that holds is above the last that did
                return True
        return False

    held: float | None = None
    missed: float | None = None
    rate = start
    while held is None or missed is None:
        if rate > max_rate:
            search.reached_ceiling = True
            return search
        if rate < min_rate:
            return search  # nothing holds, not even min_rate
        if holds(rate):
            held = rate
            rate = round(rate * factor)
        else:
            missed = rate
            rate = round(rate / factor)
    for _ in range(refinements):
        rate = round(math.sqrt(held * missed))
        if rate in (held, missed):
            break
        if holds(rate):
            held = rate
        else:
            missed = rate
    return search


def sdk_create_request(api_key: str) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body the OpenAI SDK sends for `videos.create`, captured in memory."""
    import httpx2  # the SDK's own HTTP client library
    from openai import OpenAI

    captured: list[httpx2.Request] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        captured.append(request)
        return httpx2.Response(200, json={"id": "video_capture", "object": "video"})

    client = OpenAI(
        base_url="http://capture.invalid/v1",
        api_key=api_key,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(capture)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's notice about Sora's API
        client.videos.create(
            prompt="A neon fox runs through a rainy city at night.",
            model="sora-2",
            seconds="4",
            size="720x1280",
        )
    (request,) = captured
    return list(request.headers.multi_items()), request.read()


def _load_keys(count: int) -> list[str]:
    from sora_social.accounts.actions import do_create_user, do_issue_api_key
    from sora_social.accounts.models import User

    keys = []
    for number in range(count):
        handle = f"bench-load-{number:02d}"
        user = User.objects.filter(handle=handle).first() or do_create_user(
            handle=handle, password=None
        )
        keys.append(do_issue_api_key(user, name="bench-throughput").secret)
    return keys


def _wait_until_idle(url: str, key: str, timeout_s: float = 10.0) -> None:
    """Wait until fresh connections (so both web processes, by chance) answer promptly: a step
    that overloaded the servers leaves a backlog that would otherwise land on the next step."""
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        latencies = []
        for _ in range(8):
            started = time.perf_counter()
            httpx.get(f"{url}{BARE.path}", headers=headers, timeout=timeout_s)  # 405, after auth
            latencies.append(time.perf_counter() - started)
        if statistics.median(latencies) < IDLE_MEDIAN_LATENCY_S:
            return
        time.sleep(0.5)


def _measure_endpoint(
    endpoint: Endpoint, keys: list[str], report: Callable[[str], None]
) -> Search:
    from django.conf import settings

    from sora_social.bench_views import truncate_bench_rows_table
    from sora_social.processes import ProcessGroup, free_port, web_command, worker_command

    bench_service.wipe()
    truncate_bench_rows_table()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    requests = []
    for key in keys:
        headers, body = sdk_create_request(key)
        requests.append(http_request("POST", "127.0.0.1", port, endpoint.path, headers, body))
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONPATH": str(bench_service.ROOT),
        "BENCH_ENDPOINTS": "true",
    }
    group = ProcessGroup(env=env, log_dir=bench_service.BENCH_VAR / "logs")
    try:
        for number in range(bench_service.WEB_PROCESSES):
            group.start(f"web-{number}", web_command("127.0.0.1", port))
        # /healthz wants a worker on each queue; the gpu one goes once it has answered, so
        # created jobs stay queued as they would behind busy GPUs.
        group.start("gpu-worker", worker_command("gpu", name=f"bench-gpu-{port}@%h"))
        group.start("cpu-worker", worker_command("default", name=f"bench-default-{port}@%h"))
        started = time.monotonic()
        group.wait_healthy(url)
        group.kill("gpu-worker")
        report(f"{endpoint.path}: fresh servers healthy in {time.monotonic() - started:.0f} s")
        # Unmeasured: the first requests of each process import and connect lazily.
        run_load(url, requests, rate=START_RATE, duration_s=3.0, warmup_s=0.0)

        def measure(rate: float) -> LoadResult:
            started = time.monotonic()
            _wait_until_idle(url, keys[0])
            result = run_load(
                url,
                requests,
                rate=rate,
                duration_s=STEP_SECONDS,
                warmup_s=WARMUP_SECONDS,
                stop_above_p99_s=P99_LIMIT_S,
            )
            verdict = "holds" if step_holds(result) else "misses"
            elapsed = time.monotonic() - started
            report(f"{endpoint.path}: {result.describe()} -> {verdict} [{elapsed:.0f} s]")
            return result

        return search_highest_rate(endpoint, measure)
    finally:
        group.stop()
        bench_service.wipe()  # the thousands of jobs queued by the create runs


def run(report: Callable[[str], None] | None = None) -> dict[str, Search]:
    """Search both endpoints, the bare insert first, each on its own fresh servers."""
    report = report or (lambda line: print(line, file=sys.stderr, flush=True))
    bench_service.setup_django()
    from sora_social.bench_views import create_bench_rows_table

    create_bench_rows_table()
    keys = _load_keys(LOAD_USERS)
    return {endpoint.name: _measure_endpoint(endpoint, keys, report) for endpoint in (BARE, CREATE)}


def _describe(search: Search) -> str:
    best = search.best
    if best is None:
        return f"below {MIN_RATE:.0f} req/s"
    at_least = "at least " if search.reached_ceiling else ""
    return (
        f"{at_least}{best.rate:.0f} req/s (p50 {best.latency(0.5) * 1000:.0f} ms, "
        f"p99 {best.latency(0.99) * 1000:.0f} ms; {len(search.steps)} steps)"
    )


def summarize(results: dict[str, Search]) -> list[tuple[str, str, str]]:
    bare, create = results[BARE.name], results[CREATE.name]
    rows = [
        (f"{BARE.name}, open loop: highest rate with p99 <= 150 ms", _describe(bare),
         "(baseline)"),
        (f"{CREATE.name}, open loop: highest rate with p99 <= 150 ms", _describe(create),
         "(see ratio)"),
    ]
    if bare.best is not None and create.best is not None:
        ratio = f"{create.best.rate / bare.best.rate:.2f}"
    else:
        ratio = "n/a (a search found no rate that held)"
    rows.append((f"{CREATE.name} / bare insert, highest rates' ratio", ratio, ">= 0.6"))
    return rows


if __name__ == "__main__":
    for row in summarize(run()):
        print(" | ".join(row))
