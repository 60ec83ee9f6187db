"""`make bench`: every benchmark the issues name, as one table of measured figures."""

from __future__ import annotations

import os
import sys

from benchmarks import (
    bench_faces,
    bench_liveness,
    bench_output_faces,
    bench_render,
    bench_revocation,
    bench_rules,
    bench_service,
    bench_throughput,
    bench_vectors,
    openloop,
)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    render = bench_render.run(repeats=5)
    rows.append(
        (
            "reference render + encode, 4 s 720x1280 with audio",
            f"median {render['median_s']:.2f} s (min {render['min_s']:.2f}, "
            f"max {render['max_s']:.2f}, 5 runs)",
            "<= 6 s",
        )
    )
    rows += bench_faces.summarize(bench_faces.run())
    rows += bench_liveness.summarize(bench_liveness.run())
    rows += bench_output_faces.summarize(bench_output_faces.run())
    rows += bench_service.summarize(bench_service.run())
    # The generator's own ceiling, so the throughput figures below are known to be the server's.
    generator_ceiling, _steps = openloop.self_test(duration_s=4.0, report=_progress)
    rows.append(
        (
            "open-loop load generator alone: highest rate with p99 < 5 ms (no-op server)",
            openloop.describe_ceiling(generator_ceiling),
            "far above the rates below",
        )
    )
    rows += bench_throughput.summarize(bench_throughput.run(report=_progress))
    rows += bench_revocation.summarize(bench_revocation.run())
    # 1:N search over BENCH_VECTOR_ROWS (default 1,000,000) embeddings: about 45 minutes the
    # first time (the build), minutes afterwards (the data and indexes are kept in var/bench).
    rows_env = os.environ.get("BENCH_VECTOR_ROWS", "1000000")
    vectors = bench_vectors.Config(rows=int(rows_env), reuse=True)
    rows += bench_vectors.summarize(bench_vectors.run(vectors))
    # Last: the sentence encoder pins this process's BLAS to one thread.
    rows += bench_rules.summarize(bench_rules.run())
    width = max(len(row[0]) for row in rows)
    measured = max(len(row[1]) for row in rows)
    print(f"{'benchmark':<{width}} | {'measured':<{measured}} | target")
    print(f"{'-' * width}-+-{'-' * measured}-+-------")
    for name, figure, target in rows:
        print(f"{name:<{width}} | {figure:<{measured}} | {target}")


if __name__ == "__main__":
    main()
