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
WORKER_BEACON_SECONDS = 2
# A worker killed outright (no chance to delete its beacon) drops out of /healthz this long
# after its last beat; a worker that stops cleanly drops out at once.
WORKER_BEACON_TTL_SECONDS = 3 * WORKER_BEACON_SECONDS


def worker_beacon_key(queue: str, hostname: str) -> str:
    return f"{WORKER_BEACON_PREFIX}{queue}:{hostname}"


class _Beacon:
    """Keeps `workers:alive:<queue>:<node>` keys alive in Redis while this worker runs.

    Writes and the final delete take one lock, and a stopped beacon never writes again, so a
    beat cannot land after the delete and resurrect a worker that has stopped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._keys: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self, hostname: str, queues: list[str]) -> None:
        self._keys = [worker_beacon_key(queue, hostname) for queue in queues]
        self._thread = threading.Thread(target=self._run, name="beacon", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import redis

        client = _redis_client()
        while not self._stopped.is_set():
            with self._lock:
                if self._stopped.is_set():
                    return
                try:
                    with client.pipeline() as pipe:
                        for key in self._keys:
                            pipe.set(key, "1", ex=WORKER_BEACON_TTL_SECONDS)
                        pipe.execute()
                except redis.exceptions.RedisError:
                    pass  # the broker is down; /healthz reports Redis itself
            self._stopped.wait(WORKER_BEACON_SECONDS)

    def stop(self) -> None:
        import redis

        with self._lock:
            self._stopped.set()
            if self._keys:
                try:
                    _redis_client().delete(*self._keys)
                except redis.exceptions.RedisError:
                    pass  # it expires by itself within WORKER_BEACON_TTL_SECONDS


def _redis_client() -> Any:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


_beacon = _Beacon()


@worker_ready.connect
def _start_beacon(sender: Any, **kwargs: Any) -> None:
    queues = [queue.name for queue in sender.app.amqp.queues.consume_from.values()]
    _beacon.start(sender.hostname, queues)


@worker_shutdown.connect
def _stop_beacon(**kwargs: Any) -> None:
    _beacon.stop()
