"""Output checks plugged into the real output gate by tests (settings.OUTPUT_CHECKS)."""

from __future__ import annotations

from generation.media.sampling import SampledVideo
from generation.models import VideoJob
from generation.output_gate import Outcome, OutputVerdict

SEEN: list[tuple[str, int]] = []


def remember_frames(job: VideoJob, sample: SampledVideo) -> OutputVerdict:
    SEEN.append((job.id, len(sample.frames)))
    return OutputVerdict(Outcome.PASS)


def block_everything(job: VideoJob, sample: SampledVideo) -> OutputVerdict:
    return OutputVerdict(Outcome.BLOCK, code="test_blocked", message="Blocked by a test.")


def explode(job: VideoJob, sample: SampledVideo) -> OutputVerdict:
    raise RuntimeError("a check with a bug")
