"""Wall time of the liveness check on a 5 s 720p (30 fps) registration recording.

The budget is 10 s per recording on the two-core machines this project runs on. Model loading
(face engine and speech decoder, once per worker process) is timed separately.

    python -m benchmarks.bench_liveness
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from cameos.faces import get_engine
from cameos.liveness import check_liveness, speech
from tests.cameos.recordings import RecordingSpec, build_recording

BENCHMARK_RECORDING = RecordingSpec(seconds=5.0, width=1280, height=720, fps=30)
CHALLENGE_DIGITS = "471"
CHALLENGE_TURNS = ["left", "right"]
STAGES = ("decode", "speech", "detect", "motion", "identity")


def run(repeats: int = 3) -> dict[str, float]:
    """Median seconds per stage and in total over `repeats` checks, and the model load time."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    started = time.perf_counter()
    engine = get_engine("dlib")
    speech.load()
    load_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-liveness-") as tmp:
        path = build_recording(Path(tmp), BENCHMARK_RECORDING)
        totals: list[float] = []
        stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for _attempt in range(repeats):
            started = time.perf_counter()
            result = check_liveness(path, CHALLENGE_DIGITS, CHALLENGE_TURNS, engine=engine)
            totals.append(time.perf_counter() - started)
            if not result.is_live:
                raise RuntimeError(f"the benchmark recording was refused: {result.failures}")
            for stage in STAGES:
                stages[stage].append(result.timings.get(stage, 0.0))
    figures = {f"{stage}_s": statistics.median(values) for stage, values in stages.items()}
    figures.update(
        median_s=statistics.median(totals),
        min_s=min(totals),
        max_s=max(totals),
        model_load_s=load_seconds,
    )
    return figures


def summarize(figures: dict[str, float]) -> list[tuple[str, str, str]]:
    stages = ", ".join(f"{stage} {figures[f'{stage}_s']:.2f}" for stage in STAGES)
    return [
        (
            "liveness check, 5 s 1280x720 30 fps recording",
            f"median {figures['median_s']:.2f} s (min {figures['min_s']:.2f}, "
            f"max {figures['max_s']:.2f}; {stages})",
            "<= 10 s",
        ),
        (
            "liveness models load (face engine + speech decoder, once per worker)",
            f"{figures['model_load_s']:.2f} s",
            "once per process",
        ),
    ]


if __name__ == "__main__":
    for name, figure, target in summarize(run()):
        print(f"{name} | {figure} | {target}")
