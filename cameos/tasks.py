from __future__ import annotations

from celery import shared_task

from cameos.actions.checks import checks_to_resend, do_delete_orphan_recordings, run_check


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def check_recording_task(check_id: str) -> None:
    """On queue `default`. Safe to run any number of times for one check id."""
    run_check(check_id)


@shared_task(ignore_result=True)
def resend_checks_task() -> int:
    """Send again the checks whose message was lost or whose worker died (beat, periodic)."""
    pending = checks_to_resend()
    for check_id in pending:
        check_recording_task.delay(check_id)
    do_delete_orphan_recordings()
    return len(pending)


@shared_task(ignore_result=True)
def expire_unused_cameos_task() -> int:
    """Erase the biometric data of cameos unused for CAMEO_RETENTION_MONTHS (beat, hourly)."""
    from cameos.actions.erasure import do_expire_unused_cameos

    return do_expire_unused_cameos()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def revocation_cascade_task(cameo_id: str) -> None:
    """On queue `default`. Idempotent: withdraws what is left to withdraw."""
    from cameos.actions.revocation import do_run_revocation_cascade

    do_run_revocation_cascade(cameo_id)


@shared_task(ignore_result=True)
def resume_revocations_task() -> int:
    """Run again the cascades that did not complete (beat, periodic)."""
    from cameos.actions.revocation import do_run_revocation_cascade, unfinished_revocations

    pending = unfinished_revocations()
    for cameo_id in pending:
        do_run_revocation_cascade(cameo_id)
    return len(pending)
