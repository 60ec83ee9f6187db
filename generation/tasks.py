from __future__ import annotations

from celery import shared_task

from generation.actions.jobs import do_reap_jobs
from generation.rendering import render_job


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def render_video_task(job_id: str) -> None:
    """Routed to the `gpu` queue. Safe to run any number of times for one job id."""
    render_job(job_id)


@shared_task(ignore_result=True)
def reap_jobs_task() -> dict[str, int]:
    report = do_reap_jobs()
    return {"requeued": report.requeued, "failed": report.failed,
            "redispatched": report.redispatched}
