"""`make run`: the whole product on one machine, in the foreground.

Starts (or reuses) the embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are unset,
applies migrations, then runs the web server, a render worker (queue `gpu`), a CPU worker
(queue `default`) and the scheduler (the job reaper). Ctrl-C stops all of them, and the
embedded servers too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import django


def _commands() -> dict[str, list[str]]:
    from django.conf import settings

    from sora_social.env import env_int, env_str

    python = sys.executable
    celery = [python, "-m", "celery", "-A", "sora_social"]
    return {
        "web": [
            python, "-m", "uvicorn", "sora_social.asgi:application",
            "--host", env_str("HOST", "127.0.0.1"),
            "--port", str(env_int("PORT", 8000, minimum=1)),
            "--workers", str(env_int("WEB_CONCURRENCY", 2, minimum=1)),
            "--no-access-log",
        ],
        "gpu-worker": [
            *celery, "worker", "-Q", "gpu", "-n", "gpu@%h",
            "-c", str(env_int("GPU_WORKER_CONCURRENCY", 1, minimum=1)),
            "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
            "-l", "INFO",
        ],
        "cpu-worker": [
            *celery, "worker", "-Q", "default", "-n", "default@%h",
            "-c", str(env_int("CPU_WORKER_CONCURRENCY", 2, minimum=1)),
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ],
        "scheduler": [
            *celery, "beat", "-l", "INFO",
            "-s", str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
    }


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from sora_social.embedded import stop_embedded
    from sora_social.env import env_str

    call_command("migrate", interactive=False, verbosity=1)
    children = {
        name: subprocess.Popen(command, start_new_session=True)  # noqa: S603
        for name, command in _commands().items()
    }
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(
        f"sora-social is up: http://{env_str('HOST', '127.0.0.1')}:{env_str('PORT', '8000')}/ "
        "(Ctrl-C stops everything)",
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping", file=sys.stderr)
                exit_code = 1
                stopping = True
        time.sleep(0.5)

    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    stop_embedded(
        settings.VAR_DIR,
        redis_port=None if env_str("REDIS_URL") else settings.EMBEDDED_REDIS_PORT,
        database=not env_str("DATABASE_URL"),
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
