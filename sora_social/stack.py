"""`make run`: the whole product on one machine, in the foreground, under one supervisor.

With DATABASE_URL / REDIS_URL unset it runs the embedded PostgreSQL and Redis itself, applies
migrations, then runs the web server processes, a render worker (queue `gpu`), a CPU worker
(queue `default`) and the scheduler (the job reaper).

- A child that exits unexpectedly is logged and started again, with a backoff that doubles
  while it keeps failing.
- Ctrl-C or SIGTERM stops the web and workers first and the embedded servers last.
- Every child carries the kernel's parent-death signal, so if the supervisor itself is killed
  outright (SIGKILL, the OOM killer) the children go with it; the supervisor in turn stops when
  the process that launched it (`make`) dies.
- One supervisor per VAR_DIR (a lock file), and the web port must be free: a second `make run`
  never shares a port or data folder with the first.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from sora_social.embedded import (
    EmbeddedServerError,
    ServerCommand,
    die_with_launcher,
    die_with_parent,
    postgres_server,
    redis_server,
    running_postgres,
    running_redis,
)
from sora_social.env import env_int, env_str
from sora_social.processes import ProcessGroup, scheduler_command, web_command, worker_command

logger = logging.getLogger("sora_social.stack")


class StartupError(Exception):
    """The stack cannot start; the message says why and what to change."""


def _hold_var_lock(var_dir: Path) -> IO[str]:
    var_dir.mkdir(parents=True, exist_ok=True)
    lock_file = open(var_dir / ".stack.lock", "a+")  # noqa: SIM115 - held for our lifetime
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        owner = lock_file.read().strip() or "another process"
        raise StartupError(
            f"another `make run` (pid {owner}) is using {var_dir}; stop it first, "
            "or set VAR_DIR to another folder"
        ) from None
    lock_file.truncate(0)
    lock_file.write(str(os.getpid()))
    lock_file.flush()
    return lock_file


def _check_port_free(host: str, port: int) -> None:
    """Without SO_REUSEPORT, binding fails if anything (even an old web process) listens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR lets the connections of a run that just ended linger; a listener still
        # makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StartupError(
                f"port {port} on {host} is in use ({error.strerror}); stop what listens there "
                "or set PORT to a free port"
            ) from None


def _start_server(group: ProcessGroup, server: ServerCommand) -> str:
    group.start(
        server.name, server.command, stop_signal=server.stop_signal,
        death_signal=server.stop_signal, user=server.user,
    )
    return server.wait_ready()


def _start_embedded(group: ProcessGroup, var_dir: Path) -> dict[str, str]:
    """Start the embedded servers this setup uses; return the URLs the other children get."""
    urls = {}
    if not env_str("REDIS_URL"):
        if running_redis(var_dir):
            raise StartupError(f"the embedded Redis of {var_dir} is run by another process")
        server = redis_server(var_dir, env_int("EMBEDDED_REDIS_PORT", 6390, minimum=0))
        urls["REDIS_URL"] = _start_server(group, server)
    if not env_str("DATABASE_URL"):
        if running_postgres(var_dir):
            raise StartupError(
                f"the embedded PostgreSQL of {var_dir} is run by another process "
                "(a manage.py command?); stop it first"
            )
        urls["DATABASE_URL"] = _start_server(group, postgres_server(var_dir))
    return urls


def _app_commands(var_dir: Path, host: str, port: int) -> dict[str, list[str]]:
    web_processes = env_int("WEB_CONCURRENCY", 2, minimum=1)
    return {
        **{f"web-{number}": web_command(host, port) for number in range(web_processes)},
        "gpu-worker": worker_command(
            "gpu", concurrency=env_int("GPU_WORKER_CONCURRENCY", 1, minimum=1)
        ),
        "cpu-worker": worker_command(
            "default", concurrency=env_int("CPU_WORKER_CONCURRENCY", 2, minimum=1)
        ),
        "scheduler": scheduler_command(var_dir / "celerybeat-schedule"),
    }


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "1"],
        env=env, check=True, cwd=Path(__file__).resolve().parent.parent,
        preexec_fn=die_with_parent(signal.SIGKILL),
    )


def _check_face_engine(env: dict[str, str]) -> None:
    """The configured face engine loads, or start-up stops with what to fix."""
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "check_face_engine"],
        env=env, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
        preexec_fn=die_with_parent(signal.SIGKILL),
    )
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        raise StartupError(message.removeprefix("CommandError: ") or "the face engine fails")


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack: %(message)s")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # If whatever launched us (make, a shell, a container's init) dies, stop cleanly.
    die_with_launcher(signal.SIGTERM)

    root = Path(__file__).resolve().parent.parent
    var_dir = Path(env_str("VAR_DIR", str(root / "var"))).resolve()
    host, port = env_str("HOST", "127.0.0.1"), env_int("PORT", 8000, minimum=1)
    lock = _hold_var_lock(var_dir)
    group = ProcessGroup(env=dict(os.environ))
    try:
        _check_port_free(host, port)
        group.env.update(_start_embedded(group, var_dir))
        group.env["VAR_DIR"] = str(var_dir)
        _migrate(group.env)
        _check_face_engine(group.env)
        for name, command in _app_commands(var_dir, host, port).items():
            if stopping:
                break
            group.start(name, command)
        if not stopping:
            logger.info(
                "sora-social is up: http://%s:%s/ (Ctrl-C stops everything)", host, port
            )
        while not stopping:
            group.restart_exited()
            time.sleep(0.2)
        logger.info("stopping")
        return 0
    finally:
        group.stop(timeout=10)
        lock.close()


def main() -> int:
    try:
        return run()
    except (StartupError, EmbeddedServerError) as error:
        print(f"make run: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
