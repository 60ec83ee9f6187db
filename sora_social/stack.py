"""`make run`: the whole product on one machine, in the foreground.

Starts (or reuses) the embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are unset,
applies migrations, then runs the web server, a render worker (queue `gpu`), a CPU worker
(queue `default`) and the scheduler (the job reaper). Ctrl-C stops all of them, and the
embedded servers too.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import django

from sora_social.processes import ProcessGroup, scheduler_command, web_command, worker_command


def _commands() -> dict[str, list[str]]:
    from django.conf import settings

    from sora_social.env import env_int, env_str

    host, port = env_str("HOST", "127.0.0.1"), env_int("PORT", 8000, minimum=1)
    web_processes = env_int("WEB_CONCURRENCY", 2, minimum=1)
    return {
        **{f"web-{number}": web_command(host, port) for number in range(web_processes)},
        "gpu-worker": worker_command(
            "gpu", concurrency=env_int("GPU_WORKER_CONCURRENCY", 1, minimum=1)
        ),
        "cpu-worker": worker_command(
            "default", concurrency=env_int("CPU_WORKER_CONCURRENCY", 2, minimum=1)
        ),
        "scheduler": scheduler_command(settings.VAR_DIR / "celerybeat-schedule"),
    }


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from sora_social.embedded import stop_embedded
    from sora_social.env import env_str

    call_command("migrate", interactive=False, verbosity=1)
    group = ProcessGroup(env=dict(os.environ))
    for name, command in _commands().items():
        group.start(name, command)
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
        if group.exited():
            print(f"{group.exited()} exited; stopping everything", file=sys.stderr)
            exit_code = 1
            stopping = True
        time.sleep(0.5)
    group.stop()
    stop_embedded(
        settings.VAR_DIR,
        redis_port=None if env_str("REDIS_URL") else settings.EMBEDDED_REDIS_PORT,
        database=not env_str("DATABASE_URL"),
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
