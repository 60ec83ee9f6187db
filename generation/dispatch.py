"""Render messages, and the marker that says one is outstanding for a job.

A queued job needs one render message in the broker, not one per reaper pass. Each message is
sent with its own id, and after a successful send `dispatch:{job_id}` holds that id. The
worker that receives the message deletes the marker after its claim attempt, only if it
still holds its own id (a newer message may have replaced it). So a queued job whose marker is
missing has no message on its way, and the reaper sends one; a job with a marker is left alone
however long the backlog.

The marker lives in the broker's own Redis, so it shares the fate of the messages: a Redis
restart that lost its data loses both, and every queued job is sent again, once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import kombu.exceptions
import redis

from sora_social.redis import broker_redis_client

logger = logging.getLogger(__name__)

MARKER_PREFIX = "dispatch:"
# A backstop for a marker that outlived its message (a worker whose claim raised before the
# marker was written, a narrow race): past this age the reaper sends the job again. Longer
# than any backlog this service should ever have, so a message still waiting is not doubled.
MARKER_SECONDS = 24 * 3600

# Delete the marker only if it still names this message.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def marker_key(job_id: str) -> str:
    return f"{MARKER_PREFIX}{job_id}"


def send_render_message_rollback_unsafe(job_id: str) -> None:
    """Send the job's render message now and mark it outstanding. Never raises.

    A failed send is logged and leaves no marker, so the reaper sends it once the broker is
    back (after JOB_DISPATCH_GRACE_SECONDS); the request that created the job still succeeds.
    """
    from generation.tasks import render_video_task

    message_id = str(uuid.uuid4())
    try:
        render_video_task.apply_async((job_id,), task_id=message_id)
    except (kombu.exceptions.OperationalError, redis.RedisError) as error:
        logger.warning("could not send the render message of %s (the reaper will): %s",
                       job_id, error)
        return
    except Exception:
        logger.exception("could not send the render message of %s; the reaper will", job_id)
        return
    try:
        broker_redis_client().set(marker_key(job_id), message_id, ex=MARKER_SECONDS)
    except redis.RedisError as error:
        # Without its marker the reaper may send one more message: a harmless duplicate.
        logger.warning("sent the render message of %s but could not mark it: %s", job_id, error)


def forget_render_message(job_id: str, *, message_id: str) -> None:
    """The message `message_id` was received: the job no longer has it outstanding."""
    try:
        script = broker_redis_client().register_script(_COMPARE_AND_DELETE)
        script(keys=[marker_key(job_id)], args=[message_id])
    except redis.RedisError as error:
        logger.warning("could not clear the dispatch marker of %s: %s", job_id, error)


def jobs_with_outstanding_messages(job_ids: Sequence[str]) -> set[str]:
    """Which of these jobs have a render message outstanding. Raises redis.RedisError."""
    if not job_ids:
        return set()
    values = broker_redis_client().mget([marker_key(job_id) for job_id in job_ids])
    return {job_id for job_id, value in zip(job_ids, values, strict=True) if value is not None}
