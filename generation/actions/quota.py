"""The per-user daily generation quota: one row per (user, UTC day), changed in single statements
so concurrent requests can never overspend it."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from generation.api.errors import QuotaExceeded
from generation.models import DailyGenerationUsage


def quota_today() -> datetime.date:
    return timezone.now().date()


def charge_generation_quota(user_id: int, day: datetime.date) -> int:
    """Count one generation; raise QuotaExceeded (charging nothing) when the day is used up.

    Must run inside the transaction that creates the job, so a failed create un-charges too.
    """
    limit = settings.DAILY_GENERATION_QUOTA
    table = DailyGenerationUsage._meta.db_table
    with connection.cursor() as cursor:
        # The upsert takes the row lock, so the `used < limit` test and the increment are one
        # atomic step even with many requests from the same user at once.
        cursor.execute(
            f"""
            INSERT INTO {table} (user_id, day, used) VALUES (%s, %s, 1)
            ON CONFLICT (user_id, day) DO UPDATE SET used = {table}.used + 1
            WHERE {table}.used < %s
            RETURNING used
            """,  # noqa: S608 - the table name comes from the model, values are parameters
            [user_id, day, limit],
        )
        row = cursor.fetchone()
    if row is None or row[0] > limit:
        raise QuotaExceeded(
            f"You have used your daily quota of {limit} generations; it resets at 00:00 UTC."
        )
    return int(row[0])


def refund_generation_quota(user_id: int, day: datetime.date) -> None:
    """Give one generation back. The caller guarantees it runs once per job."""
    DailyGenerationUsage.objects.filter(user_id=user_id, day=day, used__gt=0).update(
        used=F("used") - 1
    )
