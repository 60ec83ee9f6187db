"""The service's processes as commands, and a small supervisor for running a set of them.

`make run`, the integration tests, the fault suite and the benchmarks all start the same web
server, workers and scheduler through these functions. Every child gets the kernel's
parent-death signal, so none outlives the process that started it, even one killed outright.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sora_social.embedded import die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent
__all__ = [
    "ROOT", "ProcessGroup", "free_port", "scheduler_command", "web_command", "worker_command",
]
_CELERY = [sys.executable, "-m", "celery", "-A", "sora_social"]

logger = logging.getLogger(__name__)

# A child that ran at least this long before exiting starts again at the shortest backoff.
STABLE_AFTER_SECONDS = 30.0
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0


def web_command(host: str, port: int) -> list[str]:
    """One web server process; start several on the same port to use more cores."""
    return [sys.executable, "-m", "sora_social.serve", host, str(port)]


def worker_command(queue: str, *, concurrency: int = 1, name: str | None = None) -> list[str]:
    return [
        *_CELERY, "worker", "-Q", queue, "-n", name or f"{queue}@%h", "-c", str(concurrency),
        "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "-l", "INFO",
    ]


def scheduler_command(schedule_file: Path) -> list[str]:
    return [*_CELERY, "beat", "-l", "INFO", "-s", str(schedule_file)]


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes]
    # Sent to stop it cleanly, and by the kernel if the supervisor dies.
    stop_signal: int
    death_signal: int
    user: str | None
    started_at: float
    failures: int = 0  # consecutive early exits, for the restart backoff
    restart_at: float | None = None


@dataclass
class ProcessGroup:
    """Child processes, each in its own session so a signal reaches its whole tree."""

    env: dict[str, str]
    log_dir: Path | None = None
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        return {name: child.process for name, child in self.children.items()}

    def _spawn(
        self, command: list[str], *, name: str, death_signal: int, user: str | None
    ) -> subprocess.Popen[bytes]:
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen(  # noqa: S603 - our own commands
                command, env=self.env, cwd=ROOT, stdout=output,
                stderr=subprocess.STDOUT if output else None, start_new_session=True,
                user=user, preexec_fn=die_with_parent(death_signal),
            )
        finally:
            if output is not None:
                output.close()

    def start(
        self,
        name: str,
        command: list[str],
        *,
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGKILL,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a child. If we die, the kernel sends it `death_signal` (default SIGKILL)."""
        process = self._spawn(command, name=name, death_signal=death_signal, user=user)
        self.children[name] = Child(
            name=name, command=command, process=process, stop_signal=stop_signal,
            death_signal=death_signal, user=user, started_at=time.monotonic(),
        )
        return process

    def kill(self, name: str, sig: int | None = None, timeout: float = 30) -> None:
        """Stop one child and its process group: `sig` (its stop signal), SIGKILL on timeout."""
        child = self.children.pop(name)
        _stop_process(child.process, child.stop_signal if sig is None else sig, timeout)

    def exited(self) -> list[str]:
        return [name for name, child in self.children.items() if child.process.poll() is not None]

    def restart_exited(self) -> list[str]:
        """Start again every child that exited, after a backoff that doubles while it keeps
        failing early. Call it in a loop; returns the names restarted by this call."""
        now = time.monotonic()
        restarted = []
        for name, child in self.children.items():
            code = child.process.poll()
            if code is None:
                continue
            if child.restart_at is None:
                ran_for = now - child.started_at
                child.failures = 0 if ran_for >= STABLE_AFTER_SECONDS else child.failures + 1
                delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**child.failures)
                child.restart_at = now + delay
                logger.warning(
                    "%s exited with code %s after %.1f s; restarting in %.1f s",
                    name, code, ran_for, delay,
                )
                # Reap what is left of its tree (a worker's pool children, say).
                _stop_process(child.process, signal.SIGKILL, 5)
            if now >= child.restart_at:
                child.process = self._spawn(
                    child.command, name=name, death_signal=child.death_signal, user=child.user
                )
                child.started_at = now
                child.restart_at = None
                logger.warning("%s restarted (pid %s)", name, child.process.pid)
                restarted.append(name)
        return restarted

    def stop(self, timeout: float = 30) -> None:
        """Stop every child, the last started first (so servers they depend on stop last)."""
        for name in reversed(list(self.children)):
            self.kill(name, timeout=timeout)

    def wait_healthy(self, url: str, timeout: float = 90) -> dict[str, Any]:
        """Wait until GET url/healthz answers 200 (database, Redis and both queues' workers)."""
        import httpx  # a test and benchmark dependency, not a runtime one

        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.exited():
                raise RuntimeError(f"{self.exited()} exited early (logs in {self.log_dir})")
            try:
                response = httpx.get(f"{url}/healthz", timeout=5)
                last = response.json()
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.3)
        raise RuntimeError(f"not healthy after {timeout} s: {last}")


def _stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # the leader is gone; its group may still hold members
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    # Whatever is left of the group (children that outlived their leader) goes too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
