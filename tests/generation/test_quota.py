"""The daily generation quota holds exactly under concurrent creates against the real server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from generation.models import DailyGenerationUsage, VideoJob
from tests.conftest import LiveStack, Member

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_concurrent_creates_never_overspend_the_quota(live_stack: LiveStack, alice: Member) -> None:
    remaining = 5
    DailyGenerationUsage.objects.create(
        user=alice.user, day=timezone.now().date(), used=settings.DAILY_GENERATION_QUOTA - remaining
    )

    def create(number: int) -> httpx.Response:
        return httpx.post(
            f"{live_stack.url}/v1/videos",
            headers={"Authorization": f"Bearer {alice.key}"},
            data={"prompt": f"race {number}"},
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(create, range(24)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * remaining + [429] * (24 - remaining)
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert VideoJob.objects.filter(user=alice.user).count() == remaining
    assert DailyGenerationUsage.objects.get(user=alice.user).used == settings.DAILY_GENERATION_QUOTA
