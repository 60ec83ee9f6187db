"""A per-credential limit on POST /v1/videos: a fixed one-minute window counted in Redis.

When Redis is unavailable the limit fails open (logged): the request goes on, because the job
row in PostgreSQL is the truth and the daily quota, charged in the job's own transaction,
still bounds what one user can spend. Counting in the database instead would add a write per
request to the one service still up, for a limit that only smooths bursts.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from generation.errors import RateLimited
from sora_social.redis import redis_client

logger = logging.getLogger(__name__)


def check_create_rate_limit(credential: str) -> None:
    limit = settings.CREATE_RATE_LIMIT_PER_MINUTE
    window = int(time.time() // 60)
    key = f"ratelimit:create:{credential}:{window}"
    try:
        with redis_client().pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = pipe.execute()
    except redis.RedisError as error:
        logger.warning("rate limit of %s not checked, Redis is unavailable: %s", credential, error)
        return
    if count > limit:
        retry_after = 60 - int(time.time()) % 60
        raise RateLimited(
            f"Rate limit reached: {limit} video requests per minute. Retry in {retry_after} s.",
            retry_after_seconds=retry_after,
        )
