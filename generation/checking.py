"""What a CPU worker does with one job in the output check stage: claim, sample, check, finish."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from generation.actions.output import (
    do_claim_output_check,
    do_finish_output_check,
    do_release_failed_check,
)
from generation.media.sampling import sample_video
from generation.output_gate import run_output_checks
from generation.storage import copy_from_storage

logger = logging.getLogger(__name__)


def check_job_output(job_id: str) -> str | None:
    """Run the output gate on a stored render; the job's new status, or None if the check was
    not ours to run (already done, cancelled, deleted, or running elsewhere)."""
    lease = do_claim_output_check(job_id)
    if lease is None:
        logger.info("job %s is not waiting for an output check; nothing to do", job_id)
        return None
    try:
        with tempfile.TemporaryDirectory(prefix=f"check-{job_id}-") as tmp:
            local = copy_from_storage(lease.job.video.name, Path(tmp) / "video.mp4")
            sample = sample_video(local)
            verdicts = run_output_checks(lease.job, sample)
    except Exception as error:
        logger.exception("the output check of %s failed", job_id)
        do_release_failed_check(lease, error=type(error).__name__)
        return None
    status = do_finish_output_check(lease, verdicts)
    if status is None:
        logger.warning("job %s changed while it was checked; dropping this check", job_id)
    return status
