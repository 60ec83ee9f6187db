"""The service's processes as commands, and a small supervisor for running a set of them.

`make run`, the integration tests and the benchmarks all start the same web server, workers
and scheduler through these functions.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
_CELERY = [sys.executable, "-m", "celery", "-A", "sora_social"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for tests and benchmarks)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
class ProcessGroup:
    """Child processes, each in its own session so a signal reaches its whole tree."""

    env: dict[str, str]
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str]) -> None:
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own commands
            command, env=self.env, cwd=ROOT, stdout=output,
            stderr=subprocess.STDOUT if output else None, start_new_session=True,
        )

    def kill(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name)

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
