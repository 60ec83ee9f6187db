"""Wall time of the reference backend's render + encode for a 4 s 720x1280 clip with dialogue.

The budget is 6 s on the two-core machines this project runs on.

    python -m benchmarks.bench_render
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from generation.backends.base import RenderRequest
from generation.backends.reference import ReferenceBackend
from generation.media.encode import encode_clip

BENCHMARK_REQUEST = RenderRequest(
    prompt=(
        "A neon fox runs through a rainy city at night. She looks at the camera and says "
        '"watch this!" then leaps over a parked car. The crowd cheers.'
    ),
    seconds=4,
    width=720,
    height=1280,
    seed=7,
)


def render_and_encode_seconds(request: RenderRequest, out_dir: Path) -> float:
    started = time.perf_counter()
    encode_clip(ReferenceBackend().render(request), out_dir)
    return time.perf_counter() - started


def run(repeats: int = 5, request: RenderRequest = BENCHMARK_REQUEST) -> dict[str, float]:
    """Render and encode `request` `repeats` times; return the median, min and max seconds."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        timings = [
            render_and_encode_seconds(request, Path(tmp) / str(attempt))
            for attempt in range(repeats)
        ]
    return {
        "median_s": statistics.median(timings),
        "min_s": min(timings),
        "max_s": max(timings),
    }


if __name__ == "__main__":
    result = run()
    print(
        f"render+encode {BENCHMARK_REQUEST.seconds} s {BENCHMARK_REQUEST.width}x"
        f"{BENCHMARK_REQUEST.height} | median {result['median_s']:.2f} s | "
        f"min {result['min_s']:.2f} s | max {result['max_s']:.2f} s"
    )
