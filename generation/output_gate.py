"""The output gate: after a render is stored and before the job is `completed`.

One pass on a CPU worker (queue `default`) decodes the stored video once
(`generation.media.sampling`) and hands the same sampled frames to every check listed in
`settings.OUTPUT_CHECKS` (dotted paths, in order, like `REQUEST_GATE`). Checks share what they
derive from the frames (face tracks, say) through `SampledVideo.memo`.

A check is called as `check(job, sample)` and returns an `OutputVerdict`:
- `PASS`: nothing to stop;
- `HOLD`: the video completes but is held (`VideoHold`) until a person decides;
- `BLOCK`: the job fails with the verdict's error code, its quota is refunded and its stored
  files are deleted.
The slow looking happens before any write. Each verdict's `record(job, is_blocked)` then runs
inside the one transaction that finishes the job (holding its row lock), so what the checks
must remember (appearances, holds, audit events) commits with the job's outcome or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings

from generation.gate import load_paths

if TYPE_CHECKING:
    from generation.media.sampling import SampledVideo
    from generation.models import VideoJob


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    HOLD = "hold"
    BLOCK = "block"


def _record_nothing(job: VideoJob, is_blocked: bool) -> None:
    return None


@dataclass(frozen=True)
class OutputVerdict:
    outcome: Outcome
    # For BLOCK: the job's error, in the OpenAI error shape's terms.
    code: str = ""
    message: str = ""
    # Runs in the finishing transaction; `is_blocked` says whether any check blocked the job.
    record: Callable[[VideoJob, bool], None] = field(default=_record_nothing, repr=False)


OutputCheck = Callable[["VideoJob", "SampledVideo"], OutputVerdict]


def output_checks() -> tuple[OutputCheck, ...]:
    return load_paths(tuple(settings.OUTPUT_CHECKS))


def has_output_checks() -> bool:
    return bool(settings.OUTPUT_CHECKS)


def run_output_checks(job: VideoJob, sample: SampledVideo) -> list[OutputVerdict]:
    """Every check's verdict on the same frames. A check that raises fails the pass (the
    caller retries it, then blocks the job): a video is never completed unchecked."""
    return [check(job, sample) for check in output_checks()]


def first_block(verdicts: list[OutputVerdict]) -> OutputVerdict | None:
    return next((verdict for verdict in verdicts if verdict.outcome is Outcome.BLOCK), None)
