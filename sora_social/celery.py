"""The Celery app, plus a small liveness beacon each worker keeps in Redis for /healthz."""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")

app = Celery("sora_social")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

WORKER_BEACON_PREFIX = "workers:alive:"
WORKER_BEACON_SECONDS = 5
_beacon_stop = threading.Event()
_beacon_keys: list[str] = []


def worker_beacon_key(queue: str, hostname: str) -> str:
    return f"{WORKER_BEACON_PREFIX}{queue}:{hostname}"


def _run_beacon(hostname: str, queues: list[str]) -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [worker_beacon_key(queue, hostname) for queue in queues]
    _beacon_keys.extend(keys)
    while not _beacon_stop.is_set():
        try:
            with client.pipeline() as pipe:
                for key in keys:
                    pipe.set(key, "1", ex=WORKER_BEACON_SECONDS * 3)
                pipe.execute()
        except redis.exceptions.RedisError:
            pass  # the broker is down; /healthz reports Redis itself
        _beacon_stop.wait(WORKER_BEACON_SECONDS)


@worker_ready.connect
def _start_beacon(sender: Any, **kwargs: Any) -> None:
    queues = [queue.name for queue in sender.app.amqp.queues.consume_from.values()]
    thread = threading.Thread(
        target=_run_beacon, args=(sender.hostname, queues), name="beacon", daemon=True
    )
    thread.start()


@worker_shutdown.connect
def _stop_beacon(**kwargs: Any) -> None:
    """A worker stopping cleanly stops counting as alive at once; a killed one after 15 s."""
    import redis
    from django.conf import settings

    _beacon_stop.set()
    if _beacon_keys:
        try:
            redis.Redis.from_url(settings.REDIS_URL).delete(*_beacon_keys)
        except redis.exceptions.RedisError:
            pass
