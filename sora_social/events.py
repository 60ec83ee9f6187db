"""Live events to a user's WebSocket connections (one Channels group per user).

A push is only a hint that something changed; the REST API stays the truth. Events are sent
after the transaction that caused them commits, never before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# While Redis is slow or unreachable, events wait in memory up to this many; later ones are
# dropped (logged), so an outage cannot grow a process without bound.
MAX_WAITING_EVENTS = 10_000


def user_group_name(user_id: int) -> str:
    return f"user.{user_id}"


class _EventPublisher:
    """Sends events from a background thread with its own event loop, in the order given.

    The request or render that produced an event never waits for Redis; a lost hint is
    tolerable, since clients re-read the REST API. Forked processes (Celery's pool) start a
    fresh thread, because threads do not survive a fork.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def _start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._queue = asyncio.Queue(maxsize=MAX_WAITING_EVENTS)
        self._loop.create_task(self._drain(self._queue))
        threading.Thread(target=self._loop.run_forever, name="event-publisher", daemon=True).start()

    @staticmethod
    async def _drain(queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        channel_layer = get_channel_layer()
        while True:
            group, message = await queue.get()
            kind = message.get("event", {}).get("type")
            try:
                if channel_layer is not None:
                    await channel_layer.group_send(group, message)
            except (redis.RedisError, OSError) as error:
                logger.warning("could not send %s, Redis is unavailable: %s", kind, error)
            except Exception:
                logger.exception("could not send %s", kind)

    def publish(self, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            if self._owner_pid != os.getpid():
                self._start()
                self._owner_pid = os.getpid()
            loop, queue = self._loop, self._queue
        loop.call_soon_threadsafe(self._offer, queue, (group, message))

    @staticmethod
    def _offer(
        queue: asyncio.Queue[tuple[str, dict[str, Any]]], item: tuple[str, dict[str, Any]]
    ) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            logger.warning("dropped %s: %d live events are waiting for Redis",
                           item[1].get("event", {}).get("type"), queue.qsize())


_publisher = _EventPublisher()


def send_user_event(user_id: int, event: dict[str, Any]) -> None:
    """Send `event` ({"type": ..., "data": ...}) to the user once the transaction commits."""
    message = {"type": "user.event", "event": event}
    transaction.on_commit(lambda: _publisher.publish(user_group_name(user_id), message))
