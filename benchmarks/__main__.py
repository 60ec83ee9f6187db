"""`make bench`: every benchmark the issues name, as one table of measured figures."""

from __future__ import annotations

from benchmarks import bench_render, bench_service


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
    rows += bench_service.summarize(bench_service.run())
    width = max(len(row[0]) for row in rows)
    measured = max(len(row[1]) for row in rows)
    print(f"{'benchmark':<{width}} | {'measured':<{measured}} | target")
    print(f"{'-' * width}-+-{'-' * measured}-+-------")
    for name, figure, target in rows:
        print(f"{name:<{width}} | {figure:<{measured}} | {target}")


if __name__ == "__main__":
    main()
