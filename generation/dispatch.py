"""Render messages: who sends them, and the marker that says one is outstanding for a job.

The request that creates a job (or the reaper that re-queues one) never talks to the broker:
in the job's own transaction it issues a PostgreSQL NOTIFY, which is delivered only if that
transaction commits. Every CPU worker runs a dispatcher thread that LISTENs and sends the render
message, so a create costs the web tier one statement, a broker outage never touches it, and no
job is committed without someone being told to send its message. A notification missed while no
dispatcher listened (all CPU workers down, the database restarting) is caught by the reaper's
sweep after JOB_DISPATCH_GRACE_SECONDS.

A queued job needs one render message in the broker, not one per dispatcher or reaper pass.
Before sending, the sender claims `dispatch:{job_id}` with SET NX, holding the message's id; a
job whose marker exists already has a message on its way, so other dispatchers (and the reaper)
leave it alone however long the backlog. The worker that receives the message deletes the
marker after its claim attempt, only if it still holds that message's id. A send that fails
releases the marker the same way.

The marker lives in the broker's own Redis, so it shares the fate of the messages: a Redis
restart that lost its data loses both, and every queued job is sent again, once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import kombu.exceptions
import psycopg
import redis
from django.db import connection

from sora_social.redis import broker_redis_client

logger = logging.getLogger(__name__)

MARKER_PREFIX = "dispatch:"
# A backstop for a marker that outlived its message (a worker killed between receiving the
# message and its claim leaves the message unacknowledged until the broker's visibility
# timeout): past this age the reaper sends the job again. Longer than any backlog this service
# should ever have, so a message still waiting is not doubled.
MARKER_SECONDS = 24 * 3600
NOTIFY_CHANNEL_PREFIX = "video_jobs_queued_"
LISTEN_RECONNECT_SECONDS = 1.0

# Delete the marker only if it still names this message.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def marker_key(job_id: str) -> str:
    return f"{MARKER_PREFIX}{job_id}"


def notify_channel() -> str:
    """One channel per broker: a job is dispatched to the broker of the process that queued it,
    even when stacks with brokers of their own share a database (as test stacks do)."""
    from django.conf import settings

    digest = hashlib.sha256(settings.CELERY_BROKER_URL.encode()).hexdigest()[:16]
    return f"{NOTIFY_CHANNEL_PREFIX}{digest}"


def notify_job_queued(job_id: str) -> None:
    """Ask the dispatchers to send this job's render message once the transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [notify_channel(), job_id])


def send_render_message(job_id: str) -> bool:
    """Send the job's render message unless one is outstanding. Never raises; True if sent.

    A failed send is logged and leaves no marker, so the reaper sends it once the broker is
    back (after JOB_DISPATCH_GRACE_SECONDS).
    """
    from generation.tasks import render_video_task

    message_id = str(uuid.uuid4())
    try:
        if not broker_redis_client().set(marker_key(job_id), message_id, nx=True,
                                         ex=MARKER_SECONDS):
            return False  # another sender's message is on its way
    except redis.RedisError as error:
        logger.warning("could not send the render message of %s (the reaper will): %s",
                       job_id, error)
        return False
    try:
        render_video_task.apply_async((job_id,), task_id=message_id)
    except (kombu.exceptions.OperationalError, redis.RedisError) as error:
        logger.warning("could not send the render message of %s (the reaper will): %s",
                       job_id, error)
        forget_render_message(job_id, message_id=message_id)
        return False
    except Exception:
        logger.exception("could not send the render message of %s; the reaper will", job_id)
        forget_render_message(job_id, message_id=message_id)
        return False
    return True


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


def _listen_connection_kwargs() -> dict[str, Any]:
    from django.conf import settings

    database = settings.DATABASES["default"]
    kwargs: dict[str, Any] = {
        "dbname": database["NAME"], "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None, "host": database.get("HOST") or None,
        "port": database.get("PORT") or None, "autocommit": True,
        "connect_timeout": database.get("OPTIONS", {}).get("connect_timeout", 3),
    }
    return {name: value for name, value in kwargs.items() if value is not None}


class Dispatcher:
    """A thread that LISTENs for queued jobs and sends their render messages.

    It reconnects by itself after the database restarts; notifications sent while it was away
    are the reaper's to catch.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(**_listen_connection_kwargs()) as listener:
                    listener.execute(f"LISTEN {notify_channel()}")
                    self._listening.set()
                    while not self._stop.is_set():
                        for notification in listener.notifies(timeout=1.0):
                            send_render_message(notification.payload)
            except psycopg.Error as error:
                self._listening.clear()
                logger.warning("dispatcher lost the database (%s); reconnecting", error)
                self._stop.wait(LISTEN_RECONNECT_SECONDS)
            except Exception:
                logger.exception("dispatcher failed; restarting it")
                self._stop.wait(LISTEN_RECONNECT_SECONDS)
