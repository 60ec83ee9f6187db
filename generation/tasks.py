from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready, worker_shutdown

from generation.actions.jobs import do_reap_jobs
from generation.checking import check_job_output
from generation.dispatch import Dispatcher, forget_render_message
from generation.rendering import claim_render, render_claimed_job


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def render_video_task(self: Task[Any, Any], job_id: str) -> None:
    """Routed to the `gpu` queue. Safe to run any number of times for one job id."""
    try:
        lease = claim_render(job_id)
    finally:
        # This message is spent, whatever the claim did: if the job is still queued (the
        # claim raised), the reaper sees no outstanding message and sends another.
        forget_render_message(job_id, message_id=str(self.request.id))
    if lease is not None:
        render_claimed_job(lease)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def check_output_task(job_id: str) -> None:
    """The output gate, on queue `default`. Safe to run any number of times for one job id."""
    check_job_output(job_id)


@shared_task(ignore_result=True)
def reap_jobs_task() -> dict[str, int]:
    report = do_reap_jobs()
    return {"requeued": report.requeued, "failed": report.failed,
            "redispatched": report.redispatched, "checked": report.checked,
            "checks_resent": report.checks_resent}


# CPU workers (queue `default`) send the render messages of newly queued jobs.
_dispatcher: Dispatcher | None = None


@worker_ready.connect
def _start_dispatcher(sender: Any, **kwargs: Any) -> None:
    global _dispatcher
    queues = {queue.name for queue in sender.app.amqp.queues.consume_from.values()}
    if "default" in queues and _dispatcher is None:
        _dispatcher = Dispatcher()
        _dispatcher.start()


@worker_shutdown.connect
def _stop_dispatcher(**kwargs: Any) -> None:
    if _dispatcher is not None:
        _dispatcher.stop()
