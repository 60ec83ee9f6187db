"""One outstanding render message per queued job: the reaper re-sends a job only when the broker
holds no message for it, however long the backlog, and sends nothing while the broker is down."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from rest_framework.test import APIClient

from generation.actions.jobs import ReapReport, do_claim_job, do_reap_jobs
from generation.actions.requests import GenerationRequest, check_and_request_generation
from generation.dispatch import marker_key
from generation.models import VideoJob
from generation.tasks import render_video_task
from sora_social.accounts.models import ApiKey
from sora_social.processes import ProcessGroup, free_port, web_command
from sora_social.redis import broker_redis_client
from tests.conftest import Member
from tests.private_servers import (
    PrivateRedis,
    database_url_for_children,
    service_env,
    wait_answering,
    wait_for,
)

# Port 1 (tcpmux): nothing listens there, so connecting is refused at once.
NOTHING_LISTENS = "redis://127.0.0.1:1/0"


def _job(member: Member, prompt: str = "a clip") -> VideoJob:
    job, created = check_and_request_generation(
        member.user,
        GenerationRequest(prompt=prompt, model="sora-2", seconds=4, width=720, height=1280),
    )
    assert created
    return job


def _last_sent_long_ago(*job_ids: str) -> None:
    VideoJob.objects.filter(pk__in=job_ids).update(
        dispatched_at=timezone.now()
        - datetime.timedelta(seconds=settings.JOB_DISPATCH_GRACE_SECONDS + 60)
    )


@pytest.mark.django_db
def test_a_render_message_clears_the_marker_only_while_the_marker_names_it(alice: Member) -> None:
    job = _job(alice)
    assert do_claim_job(job.pk, worker="elsewhere") is not None
    broker_redis_client().set(marker_key(job.pk), "newer-message")

    render_video_task.apply((job.pk,), task_id="older-message")
    after_older = broker_redis_client().get(marker_key(job.pk))
    render_video_task.apply((job.pk,), task_id="newer-message")

    assert after_older == b"newer-message"
    assert broker_redis_client().get(marker_key(job.pk)) is None
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == ("in_progress", "elsewhere", 1)


@pytest.mark.django_db
def test_the_reaper_leaves_a_queued_job_alone_while_its_message_is_outstanding(
    alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    job = _job(alice)
    _last_sent_long_ago(job.pk)
    broker_redis_client().set(marker_key(job.pk), "its-message")

    with django_capture_on_commit_callbacks() as while_outstanding:
        outstanding = do_reap_jobs()
    broker_redis_client().delete(marker_key(job.pk))
    with django_capture_on_commit_callbacks() as once_lost:
        lost = do_reap_jobs()
    with django_capture_on_commit_callbacks() as just_sent:
        within_grace = do_reap_jobs()

    assert outstanding == ReapReport(requeued=0, failed=0, redispatched=0, checked=1)
    assert while_outstanding == []
    assert lost == ReapReport(requeued=0, failed=0, redispatched=1, checked=1)
    assert len(once_lost) == 1
    assert within_grace == ReapReport(requeued=0, failed=0, redispatched=0, checked=0)
    assert just_sent == []


@pytest.mark.django_db
def test_the_reaper_looks_at_a_bounded_page_of_queued_jobs_per_pass(
    alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    jobs = [_job(alice, prompt=f"clip {number}") for number in range(5)]
    _last_sent_long_ago(*(job.pk for job in jobs))

    with django_capture_on_commit_callbacks() as callbacks:
        reports = [do_reap_jobs(redispatch_page_size=2) for _pass in range(4)]

    assert [(report.checked, report.redispatched) for report in reports] == [
        (2, 2), (2, 2), (1, 1), (0, 0)
    ]
    assert len(callbacks) == 5  # one message per job, over three passes


@pytest.mark.django_db
def test_with_the_brokers_redis_down_the_reaper_still_recovers_leases_and_sends_nothing(
    alice: Member,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    crashed = _job(alice, prompt="its worker died")
    assert do_claim_job(crashed.pk, worker="killed") is not None
    VideoJob.objects.filter(pk=crashed.pk).update(
        lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    lost = _job(alice, prompt="its message was lost")
    _last_sent_long_ago(lost.pk)
    settings.REDIS_URL = settings.CELERY_BROKER_URL = NOTHING_LISTENS

    with caplog.at_level(logging.WARNING, logger="generation.actions.jobs"):
        with django_capture_on_commit_callbacks() as callbacks:
            report = do_reap_jobs()

    assert report == ReapReport(requeued=1, failed=0, redispatched=0, checked=0)
    # The re-queued job's live event; its message goes to the dispatchers by NOTIFY.
    assert len(callbacks) == 1
    crashed.refresh_from_db()
    assert (crashed.status, crashed.lease_token) == ("queued", None)
    assert any(
        record.getMessage().startswith(
            "re-dispatch skipped this pass, the broker's Redis is unavailable"
        )
        for record in caplog.records
    )


@pytest.mark.django_db
def test_a_create_goes_through_with_redis_down_and_the_rate_limit_open(
    alice: Member,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.REDIS_URL = NOTHING_LISTENS
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")

    with caplog.at_level(logging.WARNING, logger="generation.ratelimit"):
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post("/v1/videos", {"prompt": "Despite Redis"}, format="multipart")

    assert response.status_code == 200, response.content
    assert VideoJob.objects.get().pk == response.json()["id"]
    assert len(callbacks) == 1  # the live event: the render message goes by NOTIFY
    warnings = [record for record in caplog.records if record.name == "generation.ratelimit"]
    assert [record.getMessage().split(",")[0] for record in warnings] == [
        f"rate limit of key:{ApiKey.objects.get(user=alice.user).pk} not checked"
    ]


# --- A long backlog with nothing consuming it, on a broker this test owns -------------------

# A reaper process of its own on the private broker: one line in ("10") runs that many passes,
# one line out is their reports as JSON. Django starts once, so passes follow each other fast.
REAPER_PROCESS = """
import dataclasses, json, sys
import django
django.setup()
from generation.actions.jobs import do_reap_jobs
from generation.dispatch import Dispatcher
dispatcher = Dispatcher()
dispatcher.start()
assert dispatcher.wait_listening(30)
print("listening", flush=True)
for line in sys.stdin:
    print(json.dumps([dataclasses.asdict(do_reap_jobs()) for _ in range(int(line))]), flush=True)
"""


@dataclasses.dataclass
class BacklogBroker:
    url: str
    redis: PrivateRedis
    reaper: subprocess.Popen[str]

    def reap(self, passes: int) -> list[dict[str, int]]:
        """Run the reaper `passes` times, one pass after the other."""
        assert self.reaper.stdin is not None and self.reaper.stdout is not None
        self.reaper.stdin.write(f"{passes}\n")
        self.reaper.stdin.flush()
        reports = self.reaper.stdout.readline()
        assert reports, "the reaper process exited; see reaper.log"
        return list(json.loads(reports))

    def messages_waiting(self) -> int:
        return int(self.redis.client().llen("gpu"))


# Short, and real: other reapers on the test database (a session's live stack) wait the
# default grace, so they never touch this test's jobs, which are never that old.
BACKLOG_GRACE_SECONDS = 1


def _wait_past_the_grace(job_ids: list[str]) -> None:
    last_send = VideoJob.objects.filter(pk__in=job_ids).aggregate(Max("dispatched_at"))[
        "dispatched_at__max"
    ]
    wait_for(
        lambda: timezone.now() - last_send > datetime.timedelta(seconds=BACKLOG_GRACE_SECONDS),
        timeout=BACKLOG_GRACE_SECONDS + 5,
        what="the last send to be older than the grace period",
    )


@pytest.fixture
def backlog_broker(tmp_path: Path) -> Iterator[BacklogBroker]:
    """A private Redis, a web process and a reaper (with a dispatcher) on it; no worker consumes
    `gpu`."""
    redis = PrivateRedis(tmp_path / "redis")
    env = service_env(
        redis_url=redis.url,
        database_url=database_url_for_children(),
        JOB_DISPATCH_GRACE_SECONDS=str(BACKLOG_GRACE_SECONDS),
    )
    port = free_port()
    group = ProcessGroup(env=env, log_dir=tmp_path / "logs")
    reaper: subprocess.Popen[str] | None = None
    try:
        redis.start()
        group.start("web", web_command("127.0.0.1", port))
        with open(tmp_path / "reaper.log", "w") as reaper_log:
            reaper = subprocess.Popen(
                [sys.executable, "-c", REAPER_PROCESS], env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=reaper_log,
            )
        url = f"http://127.0.0.1:{port}"
        assert reaper.stdout is not None and reaper.stdout.readline().strip() == "listening"
        wait_answering(url)
        yield BacklogBroker(url=url, redis=redis, reaper=reaper)
    finally:
        if reaper is not None:
            reaper.kill()
            reaper.wait()
        group.stop()
        redis.kill()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_long_backlog_keeps_exactly_one_message_per_queued_job(
    backlog_broker: BacklogBroker, alice: Member
) -> None:
    backlog = 20
    for number in range(backlog):
        response = httpx.post(
            f"{backlog_broker.url}/v1/videos",
            headers={"Authorization": f"Bearer {alice.key}"},
            data={"prompt": f"backlog {number}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    job_ids = list(VideoJob.objects.values_list("pk", flat=True))
    assert len(job_ids) == backlog
    wait_for(lambda: backlog_broker.messages_waiting() >= backlog, timeout=30,
             what="the dispatcher to send every job's message")
    assert backlog_broker.messages_waiting() == backlog

    _wait_past_the_grace(job_ids)
    long_wait = backlog_broker.reap(passes=10)
    after_long_wait = backlog_broker.messages_waiting()

    backlog_broker.redis.client().flushdb()  # Redis restarted without its data
    after_data_loss = backlog_broker.reap(passes=1)
    resent = backlog_broker.messages_waiting()

    _wait_past_the_grace(job_ids)
    another_long_wait = backlog_broker.reap(passes=10)

    assert [report["redispatched"] for report in long_wait] == [0] * 10
    assert [report["checked"] for report in long_wait] == [backlog] * 10
    assert after_long_wait == backlog
    assert [report["redispatched"] for report in after_data_loss] == [backlog]
    assert resent == backlog
    assert [report["redispatched"] for report in another_long_wait] == [0] * 10
    assert backlog_broker.messages_waiting() == backlog
    assert VideoJob.objects.filter(status="queued").count() == backlog
