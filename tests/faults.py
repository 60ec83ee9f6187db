"""The fault-injection suite: the whole stack under a steady stream of creates, while its parts
are killed, then a check that nothing was lost, stuck, duplicated or mischarged.

    make faults                                   # the full run (python -m tests.faults)
    python -m tests.faults --render-kills 5 --redis-restarts 1 --postgres-restarts 1

It runs the real supervisor (`python -m sora_social.stack`) with its embedded PostgreSQL and
Redis in a data folder of its own and on free ports, and injects:
- SIGKILL of the render worker's pool child while it renders (the job's lease runs out, the
  reaper re-queues it, or fails it with `worker_lost` after JOB_MAX_ATTEMPTS);
- SIGKILL of the embedded Redis (the supervisor restarts it; messages persist in its AOF);
- SIGKILL of the embedded PostgreSQL (the supervisor restarts it; crash recovery).
Clients retry a create that got no answer or a 5xx with the same Idempotency-Key, as the SDK
does, so a retried create never makes a second job.

Then, once every job has settled: every job a client was told about exists; every job is
completed or failed with an error code; none is queued or in progress; every completed job has
exactly its one set of stored files and no failed job has any; the quota charged equals the
completed jobs plus those in flight.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from sora_social.embedded import running_postgres
from sora_social.processes import ROOT, free_port

FAULTS_DIR = ROOT / "var" / "faults"
OUTPUT_FILE_NAMES = {"video.mp4", "thumbnail.webp", "spritesheet.jpg"}
# The stream of creates keeps the render worker busy without building a backlog that would
# take long to drain: a new create every CREATE_INTERVAL while fewer than max_active are active.
CREATE_INTERVAL_SECONDS = 0.5
MAX_ACTIVE_JOBS = 12


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def command_line(process: psutil.Process) -> str:
    """The process's command line, or "" once it is gone or a zombie."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def supervisor_env(var_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    """The environment of a small `make run` on its own embedded servers (no DATABASE_URL or
    REDIS_URL from outside), its own data folder and port."""
    env = {
        name: value for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        VAR_DIR=str(var_dir), PORT=str(port), EMBEDDED_REDIS_PORT="0", WEB_CONCURRENCY="1",
        CPU_WORKER_CONCURRENCY="1", PYTHONPATH=str(ROOT), **overrides,
    )
    return env


@dataclass
class Tally:
    """What the clients saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    job_ids: set[str] = field(default_factory=set)
    attempts: int = 0
    retried: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    abandoned: int = 0
    latencies: list[float] = field(default_factory=list)


class Stack:
    def __init__(self, var_dir: Path, env: dict[str, str]) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = var_dir / "supervisor.log"
        var_dir.mkdir(parents=True, exist_ok=True)
        self.env = supervisor_env(var_dir, self.port, HF_HUB_OFFLINE="1", **env)
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own supervisor
                [sys.executable, "-m", "sora_social.stack"], env=self.env, cwd=ROOT,
                stdout=output, stderr=subprocess.STDOUT,
            )

    def children(self, marker: str) -> list[psutil.Process]:
        return [
            child for child in psutil.Process(self.process.pid).children()
            if marker in command_line(child) and child.status() != psutil.STATUS_ZOMBIE
        ]

    def child(self, marker: str) -> psutil.Process:
        found = self.children(marker)
        if len(found) != 1:
            raise RuntimeError(f"{len(found)} children of the supervisor match {marker!r}")
        return found[0]

    def is_healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the supervisor exited; see {self.log}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def issue_key(self) -> str:
        output = subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "issue_api_key", "faults", "--create-user"],
            env=self.env, cwd=ROOT, check=True, capture_output=True, text=True,
        )
        return output.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Database:
    """Direct reads of the job table, reconnecting across PostgreSQL restarts."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.connection: psycopg.Connection[Any] | None = None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.connection is None or self.connection.closed:
                    socket_dir = running_postgres(self.var_dir)
                    if socket_dir is None:
                        raise psycopg.OperationalError("the embedded PostgreSQL is not running")
                    self.connection = psycopg.connect(
                        host=str(socket_dir), user="postgres", dbname="sora_social",
                        autocommit=True, connect_timeout=3,
                    )
                return self.connection.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


def _create_stream(url: str, key: str, database: Database, tally: Tally,
                   stop: threading.Event, max_active: int) -> None:
    """A steady stream of creates; each retried with its own Idempotency-Key until answered."""
    headers = {"Authorization": f"Bearer {key}"}
    fields = {"prompt": "fault run", "model": "sora-2", "seconds": "4", "size": "720x1280"}
    with httpx.Client(timeout=15) as client:
        while not stop.is_set():
            active = database.query(
                "SELECT count(*) FROM generation_videojob "
                "WHERE status IN ('queued', 'in_progress')"
            )[0][0]
            if active >= max_active:
                stop.wait(0.2)
                continue
            idempotency_key = uuid.uuid4().hex
            for attempt in range(60):
                started = time.monotonic()
                try:
                    response = client.post(
                        f"{url}/v1/videos", data=fields,
                        headers={**headers, "Idempotency-Key": idempotency_key},
                    )
                except httpx.HTTPError:
                    response = None
                with tally.lock:
                    tally.attempts += 1
                    tally.retried += attempt > 0
                    if response is not None and response.status_code in (200, 201):
                        tally.job_ids.add(response.json()["id"])
                        tally.latencies.append(time.monotonic() - started)
                        break
                    status = response.status_code if response is not None else 0
                    tally.refused[status] = tally.refused.get(status, 0) + 1
                if response is not None and response.status_code < 500:
                    break  # a 4xx is an answer: retrying would not change it
                time.sleep(0.5)
            else:
                with tally.lock:
                    tally.abandoned += 1
            stop.wait(CREATE_INTERVAL_SECONDS)


def _kill_render_mid_job(
    stack: Stack, database: Database, killed_leases: set[str], timeout: float = 180
) -> None:
    """SIGKILL the render worker's pool child while it holds a job that has made progress,
    under a lease not killed before (each kill ends a different attempt)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rendering = database.query(
            "SELECT worker, lease_token::text FROM generation_videojob "
            "WHERE status = 'in_progress' AND progress > 0 AND lease_until > now()"
        )
        try:
            worker = stack.child("worker -Q gpu")
            pool = {
                child.pid: child for child in worker.children()
                if child.status() != psutil.STATUS_ZOMBIE
            }
        except (RuntimeError, psutil.Error):
            pool = {}
        for worker_name, lease in rendering:
            pid = int(worker_name.rsplit(":", 1)[1]) if ":" in worker_name else 0
            if pid in pool and lease not in killed_leases:
                pool[pid].send_signal(signal.SIGKILL)
                killed_leases.add(lease)
                return
        time.sleep(0.05)
    raise TimeoutError("no render was under way to kill")


def _kill_server_and_wait(stack: Stack, marker: str) -> None:
    victim = stack.child(marker)
    victim.send_signal(signal.SIGKILL)
    _wait_until(lambda: not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE,
                10, f"{marker} to die")
    _wait_until(
        lambda: any(child.pid != victim.pid for child in stack.children(marker)),
        60, f"the supervisor to restart {marker}",
    )
    _wait_until(stack.is_healthy, 120, "the stack to be healthy again")


def _schedule(render_kills: int, redis_restarts: int, postgres_restarts: int,
              seed: int) -> list[str]:
    """The faults in a random order: server restarts spread among the render kills."""
    faults = ["render"] * render_kills + ["redis"] * redis_restarts
    faults += ["postgres"] * postgres_restarts
    random.Random(seed).shuffle(faults)
    return faults


@dataclass
class Report:
    figures: dict[str, Any]
    problems: list[str]

    def table(self) -> str:
        width = max(len(name) for name in self.figures)
        lines = [f"{'figure':<{width}} | value", f"{'-' * width}-+------"]
        lines += [f"{name:<{width}} | {value}" for name, value in self.figures.items()]
        lines.append("")
        lines.append("PASS: every invariant holds" if not self.problems else "FAIL:")
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def _check(var_dir: Path, database: Database, tally: Tally) -> Report:
    jobs = database.query(
        "SELECT id, status, error_code, attempts, is_quota_refunded FROM generation_videojob"
    )
    charged = database.query("SELECT coalesce(sum(used), 0) FROM generation_dailygenerationusage")
    by_status: dict[str, int] = {}
    for _, status, *_ in jobs:
        by_status[status] = by_status.get(status, 0) + 1
    problems = []
    known = {row[0] for row in jobs}
    lost = tally.job_ids - known
    if lost:
        problems.append(f"{len(lost)} jobs a client was told about are gone: {sorted(lost)[:5]}")
    stuck = [f"{row[0]} ({row[1]}, attempt {row[3]})" for row in jobs
             if row[1] in ("queued", "in_progress")]
    if stuck:
        problems.append(f"{len(stuck)} jobs are stuck queued or in progress: {stuck[:5]}")
    unexplained = [row[0] for row in jobs if row[1] == "failed" and not row[2]]
    if unexplained:
        problems.append(f"{len(unexplained)} failed jobs have no error code")
    media = var_dir / "media" / "videos"
    files = {
        folder.name: {path.name for path in folder.iterdir()}
        for folder in (media.iterdir() if media.exists() else [])
    }
    completed = {row[0] for row in jobs if row[1] == "completed"}
    incomplete_sets = [job for job in completed if files.get(job) != OUTPUT_FILE_NAMES]
    if incomplete_sets:
        problems.append(f"{len(incomplete_sets)} completed jobs lack exactly one set of files")
    leftovers = sorted(set(files) - completed)
    if leftovers:
        problems.append(f"{len(leftovers)} jobs that did not complete left files: {leftovers[:5]}")
    in_flight = by_status.get("queued", 0) + by_status.get("in_progress", 0)
    expected_charge = len(completed) + in_flight
    if charged[0][0] != expected_charge:
        problems.append(
            f"quota charged {charged[0][0]}, but completed + in flight = {expected_charge}"
        )
    latencies = sorted(tally.latencies)
    figures: dict[str, Any] = {
        "create requests sent (with retries)": tally.attempts,
        "creates retried after no answer or 5xx": tally.retried,
        "non-2xx answers by status (0 = no answer)": dict(sorted(tally.refused.items())),
        "creates abandoned after 60 tries": tally.abandoned,
        "jobs created": len(jobs),
        "jobs a client was told about": len(tally.job_ids),
        "completed": by_status.get("completed", 0),
        "failed, by code": _failed_codes(jobs),
        "lost": len(lost),
        "stuck (queued or in progress)": len(stuck),
        "completed with exactly one set of files": len(completed) - len(incomplete_sets),
        "jobs not completed that left files": len(leftovers),
        "attempts per completed job (max)": max(
            (row[3] for row in jobs if row[1] == "completed"), default=0
        ),
        "quota charged / completed + in flight": f"{charged[0][0]} / {expected_charge}",
        "create latency p50 / max (answered)": (
            f"{latencies[len(latencies) // 2] * 1000:.0f} ms / {latencies[-1] * 1000:.0f} ms"
            if latencies else "n/a"
        ),
    }
    return Report(figures=figures, problems=problems)


def _failed_codes(jobs: list[tuple[Any, ...]]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for _, status, code, *_ in jobs:
        if status == "failed":
            codes[code or "(none)"] = codes.get(code or "(none)", 0) + 1
    return codes


@dataclass
class FaultRun:
    render_kills: int = 100
    redis_restarts: int = 5
    postgres_restarts: int = 2
    seed: int = 1
    max_active_jobs: int = MAX_ACTIVE_JOBS
    settle_seconds: float = 600
    var_dir: Path = field(default_factory=lambda: FAULTS_DIR / f"run-{os.getpid()}")
    # A short lease and a fast reaper, so each killed render is recovered within seconds.
    env: dict[str, str] = field(default_factory=lambda: {
        "JOB_LEASE_SECONDS": "3",
        "REAPER_INTERVAL_SECONDS": "1",
        "JOB_DISPATCH_GRACE_SECONDS": "3",
        "DAILY_GENERATION_QUOTA": "1000000",
        "CREATE_RATE_LIMIT_PER_MINUTE": "1000000",
    })


@dataclass
class Outcome:
    report: Report
    injected: dict[str, int]
    seconds: float


def run(config: FaultRun) -> Outcome:
    started = time.monotonic()
    shutil.rmtree(config.var_dir, ignore_errors=True)
    stack = Stack(config.var_dir, config.env)
    stop = threading.Event()
    tally = Tally()
    injected = {"render": 0, "redis": 0, "postgres": 0}
    database = Database(config.var_dir)
    killed_leases: set[str] = set()
    try:
        _wait_until(stack.is_healthy, 180, "the stack to start")
        key = stack.issue_key()
        creator = threading.Thread(
            target=_create_stream,
            args=(stack.url, key, database, tally, stop, config.max_active_jobs),
            daemon=True,
        )
        creator.start()
        for fault in _schedule(config.render_kills, config.redis_restarts,
                               config.postgres_restarts, config.seed):
            if fault == "render":
                _kill_render_mid_job(stack, database, killed_leases)
            else:
                _kill_server_and_wait(stack, "redis-server" if fault == "redis" else "postgres")
            injected[fault] += 1
        stop.set()
        creator.join(timeout=120)
        try:
            _wait_until(
                lambda: not database.query(
                    "SELECT 1 FROM generation_videojob "
                    "WHERE status IN ('queued', 'in_progress') LIMIT 1"
                ),
                config.settle_seconds, "every job to settle",
            )
        except TimeoutError:
            pass  # reported below as stuck jobs
        report = _check(config.var_dir, database, tally)
    finally:
        stop.set()
        if database.connection is not None:
            database.connection.close()
        stack.stop()
    report.figures = {
        "render workers killed mid-render": injected["render"],
        "Redis killed and restarted": injected["redis"],
        "PostgreSQL killed and restarted": injected["postgres"],
        **report.figures,
    }
    outcome = Outcome(report=report, injected=injected, seconds=time.monotonic() - started)
    report.figures["wall time"] = f"{outcome.seconds:.0f} s"
    shutil.rmtree(config.var_dir, ignore_errors=True)
    return outcome


def _arguments(argv: list[str] | None) -> FaultRun:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--render-kills", type=int, default=100)
    parser.add_argument("--redis-restarts", type=int, default=5)
    parser.add_argument("--postgres-restarts", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args(argv)
    return FaultRun(
        render_kills=arguments.render_kills, redis_restarts=arguments.redis_restarts,
        postgres_restarts=arguments.postgres_restarts, seed=arguments.seed,
    )


def main(argv: list[str] | None = None) -> int:
    outcome = run(_arguments(argv))
    print(outcome.report.table(), flush=True)
    return 0 if not outcome.report.problems else 1


if __name__ == "__main__":
    sys.exit(main())

