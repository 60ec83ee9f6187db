"""Redis clients for the things that are not Celery, Channels or the cache.

One client (and connection pool) per process and URL. Commands fail fast when Redis is down,
so callers can degrade instead of hanging: a short connect timeout, a bounded read timeout and
one immediate retry, which is what a pooled connection left over from before a Redis restart
needs to reconnect transparently.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_SECONDS = 1.0
COMMAND_TIMEOUT_SECONDS = 2.0


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), retries=1),
    )


def redis_client() -> redis.Redis:
    """The Redis of rate limits, worker beacons and /healthz (REDIS_URL)."""
    return _client(settings.REDIS_URL)


def broker_redis_client() -> redis.Redis:
    """The Redis that carries Celery's messages: state that must share their fate lives here."""
    return _client(settings.CELERY_BROKER_URL)
