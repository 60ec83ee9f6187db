"""A per-credential limit on POST /v1/videos: a fixed one-minute window counted in Redis."""

from __future__ import annotations

import time

from django.conf import settings

from generation.api.errors import RateLimited
from sora_social.redis import redis_client


def check_create_rate_limit(credential: str) -> None:
    limit = settings.CREATE_RATE_LIMIT_PER_MINUTE
    window = int(time.time() // 60)
    key = f"ratelimit:create:{credential}:{window}"
    with redis_client().pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    if count > limit:
        retry_after = 60 - int(time.time()) % 60
        raise RateLimited(
            f"Rate limit reached: {limit} video requests per minute. Retry in {retry_after} s.",
            retry_after_seconds=retry_after,
        )
