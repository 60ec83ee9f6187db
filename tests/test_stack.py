"""`make run`'s supervisor and the embedded servers: nothing orphaned, nothing shared, crashes
restarted. Each test runs the real supervisor (`python -m sora_social.stack`) on free ports with
a data folder of its own, and inspects the process tree with psutil."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from sora_social.processes import ROOT, free_port
from tests.faults import command_line, supervisor_env
from tests.private_servers import wait_for
from tests.settings import TEST_RUNS_DIR

pytestmark = pytest.mark.integration

STACK_START_SECONDS = 120
# Every child must be gone this soon after the supervisor dies, however it dies.
CHILDREN_GONE_SECONDS = 10


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Stack:
    """One `make run` supervisor on a data folder and port of its own."""

    var_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def child(self, marker: str) -> psutil.Process:
        """The direct child whose command line contains `marker`."""
        matches = [
            child for child in psutil.Process(self.process.pid).children()
            if marker in command_line(child) and _alive(child)
        ]
        assert len(matches) == 1, f"{len(matches)} children match {marker!r}"
        return matches[0]

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/healthz", timeout=10)

    def wait_healthy(self, timeout: float = STACK_START_SECONDS) -> None:
        def healthy() -> bool:
            assert self.process.poll() is None, f"the supervisor exited: {self.log.read_text()}"
            try:
                return self.health().status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=timeout, what="the stack to be healthy")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def _start_stack(var_dir: Path, port: int | None = None, **overrides: str) -> Stack:
    port = port or free_port()
    log = var_dir.parent / f"{var_dir.name}-supervisor-{port}.log"
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sora_social.stack"],
            env=supervisor_env(var_dir, port, REAPER_INTERVAL_SECONDS="1", **overrides),
            cwd=ROOT,
            stdout=output, stderr=subprocess.STDOUT,
        )
    return Stack(var_dir=var_dir, port=port, process=process, log=log)


def _new_var_dir() -> Path:
    # Short paths: PostgreSQL's socket lives under it.
    return TEST_RUNS_DIR / f"stack-{os.getpid()}-{time.monotonic_ns() % 10**6}"


@pytest.fixture
def var_dir() -> Iterator[Path]:
    path = _new_var_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _running(var_dir: Path) -> Iterator[Stack]:
    running = _start_stack(var_dir)
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


@pytest.fixture
def stack(var_dir: Path) -> Iterator[Stack]:
    yield from _running(var_dir)


@pytest.fixture(scope="module")
def shared_stack() -> Iterator[Stack]:
    """One stack for the tests that leave it running as they found it."""
    path = _new_var_dir()
    try:
        yield from _running(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _assert_all_gone(processes: list[psutil.Process], within: float) -> None:
    def describe() -> str:
        return ", ".join(
            f"{process.pid} {command_line(process)[:80]}"
            for process in processes if _alive(process)
        )

    deadline = time.monotonic() + within
    while any(_alive(process) for process in processes):
        assert time.monotonic() < deadline, f"still running after {within} s: {describe()}"
        time.sleep(0.1)


MARKERS = {
    "web": "sora_social.serve",
    "render worker": "worker -Q gpu",
    "cpu worker": "worker -Q default",
    "scheduler": " beat ",
    "redis": "redis-server",
    "postgres": "bin/postgres",
}


def _kinds(processes: list[psutil.Process]) -> set[str]:
    kinds = set()
    for process in processes:
        command = command_line(process)
        kinds.update(kind for kind, marker in MARKERS.items() if marker in command)
    return kinds


def _web_listeners(port: int) -> set[int]:
    return {
        connection.pid for connection in psutil.net_connections("tcp")
        if connection.laddr and connection.laddr.port == port
        and connection.status == psutil.CONN_LISTEN
    }


def test_a_supervisor_killed_outright_takes_every_child_with_it(
    var_dir: Path, stack: Stack
) -> None:
    processes = stack.descendants()
    assert _kinds(processes) == set(MARKERS)

    stack.process.send_signal(signal.SIGKILL)
    stack.process.wait()

    _assert_all_gone(processes, CHILDREN_GONE_SECONDS)
    # A new run then owns the port alone: no old web process answers beside it.
    second = _start_stack(var_dir, port=stack.port)
    try:
        second.wait_healthy()
        web = [p for p in second.descendants() if "sora_social.serve" in command_line(p)]
        assert _web_listeners(stack.port) == {process.pid for process in web}
    finally:
        second.stop()


def test_sigterm_then_sigkill_three_seconds_later_leaves_nothing(stack: Stack) -> None:
    processes = stack.descendants()

    stack.process.send_signal(signal.SIGTERM)
    try:
        stack.process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait()

    _assert_all_gone(processes, CHILDREN_GONE_SECONDS)


def test_a_second_run_on_the_same_data_or_port_is_refused(shared_stack: Stack) -> None:
    same_data = _start_stack(shared_stack.var_dir)
    assert same_data.process.wait(timeout=60) == 2
    assert "another `make run`" in same_data.log.read_text()

    other_dir = _new_var_dir()
    try:
        same_port = _start_stack(other_dir, port=shared_stack.port)
        assert same_port.process.wait(timeout=60) == 2
        message = same_port.log.read_text()
        assert f"port {shared_stack.port} on 127.0.0.1 is in use" in message
        assert "set PORT" in message
    finally:
        shutil.rmtree(other_dir, ignore_errors=True)
    assert shared_stack.health().status_code == 200


@pytest.mark.parametrize("kind", ["redis", "postgres", "web", "render worker", "scheduler"])
def test_a_child_that_dies_is_restarted_and_health_returns(shared_stack: Stack, kind: str) -> None:
    victim = shared_stack.child(MARKERS[kind])

    victim.send_signal(signal.SIGKILL)

    wait_for(lambda: not _alive(victim), timeout=10, what="the child to die")
    wait_for(
        lambda: any(
            MARKERS[kind] in command_line(child) and child.pid != victim.pid
            and _alive(child)
            for child in psutil.Process(shared_stack.process.pid).children()
        ),
        timeout=60, what=f"the {kind} to be restarted",
    )
    shared_stack.wait_healthy(timeout=90)
    assert "restarting in" in shared_stack.log.read_text()


def test_a_missing_face_model_folder_stops_start_up_with_what_to_fix(var_dir: Path) -> None:
    run = _start_stack(var_dir, FACE_ENGINE="insightface",
                       FACE_MODEL_DIR=str(var_dir / "no-models-here"))

    assert run.process.wait(timeout=120) == 2
    message = run.log.read_text()
    assert f"FACE_MODEL_DIR={var_dir / 'no-models-here'} does not exist" in message
    assert "w600k_r50.onnx" in message
    assert not [p for p in psutil.process_iter() if str(var_dir) in command_line(p)]


def test_a_port_held_by_a_foreign_redis_is_a_clear_error(var_dir: Path) -> None:
    """The embedded Redis is reused only if it is this data folder's own; a Redis that merely
    answers on the recorded port is refused, not taken over (or flushed)."""
    from sora_social.embedded import _redis_server_binary

    port = free_port()
    foreign = subprocess.Popen(
        [str(_redis_server_binary()), "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        wait_for(lambda: _pings(client), timeout=10, what="the foreign Redis")
        client.set("foreign-data", "keep me")
        (var_dir / "redis").mkdir(parents=True)
        (var_dir / "redis" / "port").write_text(str(port))

        run = _start_stack(var_dir)
        assert run.process.wait(timeout=60) == 2
        message = run.log.read_text()
        assert f"port {port} (EMBEDDED_REDIS_PORT) is in use by another program" in message
        assert client.get("foreign-data") == b"keep me"
    finally:
        foreign.kill()
        foreign.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def test_a_process_that_starts_the_embedded_servers_stops_them_when_it_is_killed(
    var_dir: Path,
) -> None:
    """What `make test` relies on: the test process owns the servers it starts."""
    script = (
        "import django, os, time; django.setup(); from django.db import connection; "
        "connection.ensure_connection(); print('ready', flush=True); time.sleep(600)"
    )
    env = {
        **supervisor_env(var_dir, free_port(), REAPER_INTERVAL_SECONDS="1"),
        "DJANGO_SETTINGS_MODULE": "sora_social.settings",
    }
    owner = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stdout=subprocess.PIPE
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == b"ready"
        servers = psutil.Process(owner.pid).children(recursive=True)
        assert _kinds(servers) == {"redis", "postgres"}
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    _assert_all_gone(servers, CHILDREN_GONE_SECONDS)
