"""The dlib face engine's cost: model load, detection per 1280x720 frame and per face, embedding.

The frame is rows 40-759 of insightface's t1.jpg: six faces of 88-126 px, about what a person
takes up in a 720p video. Detection includes the 5-point landmarks and the false-positive check.

    python -m benchmarks.bench_faces
"""

from __future__ import annotations

import statistics
import time
from typing import Any

REPEATS = 7
LOADS = 3


def run(repeats: int = REPEATS, loads: int = LOADS) -> dict[str, Any]:
    """Medians (ms) over `repeats` detections and embeddings, and over `loads` model loads."""
    if repeats < 1 or loads < 1:
        raise ValueError(f"repeats and loads must be at least 1, got {repeats} and {loads}")
    from cameos.faces.calibration import group_photo
    from cameos.faces.dlib_engine import DlibEngine

    frame = group_photo()[40:760].copy()
    load_seconds = []
    for _ in range(loads):
        started = time.perf_counter()
        engine = DlibEngine()
        load_seconds.append(time.perf_counter() - started)

    detect_seconds = []
    faces = engine.detect(frame)  # warm-up, and the faces the embeddings below use
    for _ in range(repeats):
        started = time.perf_counter()
        found = engine.detect(frame)
        detect_seconds.append(time.perf_counter() - started)
        if len(found) != len(faces):
            raise RuntimeError(f"detection is not stable: {len(found)} faces, then {len(faces)}")
    if not faces:
        raise RuntimeError("no face found in the benchmark frame")

    embed_seconds = []
    for _ in range(repeats):
        for face in faces:
            started = time.perf_counter()
            engine.embed(frame, face)
            embed_seconds.append(time.perf_counter() - started)

    detect_ms = statistics.median(detect_seconds) * 1000
    return {
        "frame": f"{frame.shape[1]}x{frame.shape[0]}",
        "faces": len(faces),
        "load_ms": statistics.median(load_seconds) * 1000,
        "detect_frame_ms": detect_ms,
        "detect_face_ms": detect_ms / len(faces),
        "embed_ms": statistics.median(embed_seconds) * 1000,
        "embed_max_ms": max(embed_seconds) * 1000,
        "repeats": repeats,
        "loads": loads,
    }


def summarize(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows for `make bench`: (benchmark, measured, target)."""
    return [
        (
            "dlib face engine: model load",
            f"median {result['load_ms']:.0f} ms ({result['loads']} loads)",
            "once per process",
        ),
        (
            f"dlib face detection + landmarks, {result['frame']} frame, {result['faces']} faces",
            f"median {result['detect_face_ms']:.1f} ms per face "
            f"({result['detect_frame_ms']:.0f} ms per frame, {result['repeats']} runs)",
            "measured only",
        ),
        (
            "dlib face embedding (ResNet 128-d, no BLAS)",
            f"median {result['embed_ms']:.0f} ms per face (max {result['embed_max_ms']:.0f})",
            "measured only",
        ),
    ]


if __name__ == "__main__":
    for name, figure, _target in summarize(run()):
        print(f"{name} | {figure}")
