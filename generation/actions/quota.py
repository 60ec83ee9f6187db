"""The per-user daily generation quota: one row per (user, UTC day), changed in single statements
so concurrent requests can never overspend it."""

from __future__ import annotations

import contextlib
import datetime
import json

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from generation.dispatch import notify_channel
from generation.errors import QuotaExceeded
from generation.models import DailyGenerationUsage, VideoJob


def quota_today() -> datetime.date:
    return timezone.now().date()


def charge_quota_and_enqueue(job: VideoJob) -> int:
    """Charge the day's quota, insert the job and notify the dispatchers, in one statement.

    Raises QuotaExceeded, charging and inserting nothing, when the day is used up; returns the
    generations used today. In autocommit the statement is its own transaction; inside an outer
    one it commits (and notifies) with it. See migration 0003 for the function.
    """
    limit = settings.DAILY_GENERATION_QUOTA
    values = {
        field.column: field.get_db_prep_save(field.pre_save(job, add=True), connection)
        for field in VideoJob._meta.concrete_fields
    }
    # Alone, the statement is its own transaction (no BEGIN and COMMIT round trips); inside a
    # caller's transaction, a savepoint keeps that transaction usable if it fails.
    in_transaction = connection.in_atomic_block
    with transaction.atomic() if in_transaction else contextlib.nullcontext(), \
            connection.cursor() as cursor:
        cursor.execute(
            "SELECT generation_enqueue_job(%s::jsonb, %s, %s)",
            [json.dumps(values, default=str), limit, notify_channel()],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None:
        raise QuotaExceeded(
            f"You have used your daily quota of {limit} generations; it resets at 00:00 UTC."
        )
    return int(row[0])


def refund_generation_quota(user_id: int, day: datetime.date) -> None:
    """Give one generation back. The caller guarantees it runs once per job."""
    DailyGenerationUsage.objects.filter(user_id=user_id, day=day, used__gt=0).update(
        used=F("used") - 1
    )
