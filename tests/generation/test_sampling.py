"""Sampling a stored video for the output checks: regular frames plus scene changes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from generation.media.sampling import SampledVideo, UnreadableVideo, sample_video

WIDTH, HEIGHT, FPS, FRAME_COUNT = 128, 72, 24, 96  # 4 s
# The picture cuts to a new scene at these frames: 1.25 s (between two regular samples),
# 2.0 s (on a regular sample) and 2.75 s.
CUT_FRAMES = (30, 48, 66)
# Every scene pans 2 px a frame (a fast camera move for a 128 px frame), so consecutive frames
# of one scene differ too, only less than a cut.
PAN_PIXELS = 2


def _scene(seed: int) -> np.ndarray:
    """A smooth random landscape, wide enough to pan across for the whole clip."""
    coarse = np.random.default_rng(seed).integers(0, 256, size=(6, 24, 3), dtype=np.uint8)
    size = (WIDTH + PAN_PIXELS * FRAME_COUNT, HEIGHT)
    return cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)


SCENES = tuple(_scene(seed) for seed in range(len(CUT_FRAMES) + 1))


def _source_frame(index: int) -> np.ndarray:
    scene = SCENES[sum(index >= cut for cut in CUT_FRAMES)]
    left = index * PAN_PIXELS
    return np.ascontiguousarray(scene[:, left : left + WIDTH])


@pytest.fixture(scope="module")
def scenes_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sampling") / "scenes.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(FRAME_COUNT):
            frame = av.VideoFrame.from_ndarray(_source_frame(index), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def sample(scenes_clip: Path) -> SampledVideo:
    return sample_video(scenes_clip)


def _times_and_cuts(sample: SampledVideo) -> list[tuple[float, bool]]:
    return [(round(frame.time, 3), frame.is_scene_change) for frame in sample.frames]


def test_it_keeps_two_frames_a_second_and_each_cut(sample: SampledVideo) -> None:
    assert _times_and_cuts(sample) == [
        (0.0, False),
        (0.5, False),
        (1.0, False),
        (1.25, True),  # an extra frame for the cut
        (1.5, False),
        (2.0, True),  # the regular sample is the cut
        (2.5, False),
        (2.75, True),
        (3.0, False),
        (3.5, False),
    ]


def test_it_describes_the_video(sample: SampledVideo) -> None:
    assert (sample.width, sample.height) == (WIDTH, HEIGHT)
    assert sample.duration == pytest.approx(4.0)
    assert sample.decoded_frame_count == FRAME_COUNT
    assert sample.memo == {}


def test_each_image_is_its_frame_in_rgb(sample: SampledVideo) -> None:
    for frame in sample.frames:
        image = frame.image
        assert image.shape == (HEIGHT, WIDTH, 3)
        assert image.dtype == np.uint8
        assert image.flags.c_contiguous
        assert not image.flags.writeable
        source = _source_frame(round(frame.time * FPS))
        difference = np.abs(image.astype(np.int16) - source.astype(np.int16)).mean()
        assert difference < 6, f"the frame at {frame.time} s is not its source frame"


def test_it_halves_the_rate_rather_than_exceed_max_frames(scenes_clip: Path) -> None:
    sample = sample_video(scenes_clip, max_frames=6)

    # One regular frame a second remains, plus one cut frame (a quarter of 6, rounded down);
    # the 2.75 s cut is no longer kept but the next frame still says the scene changed.
    assert _times_and_cuts(sample) == [
        (0.0, False),
        (1.0, False),
        (1.25, True),
        (2.0, True),
        (3.0, True),
    ]


def test_a_higher_threshold_ignores_the_cuts(scenes_clip: Path) -> None:
    sample = sample_video(scenes_clip, scene_threshold=255.0)

    assert [frame.time for frame in sample.frames] == pytest.approx(
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    )
    assert not any(frame.is_scene_change for frame in sample.frames)


def test_it_refuses_a_video_longer_than_max_seconds(scenes_clip: Path) -> None:
    with pytest.raises(UnreadableVideo, match="more than 2 s"):
        sample_video(scenes_clip, max_seconds=2.0)


@pytest.mark.parametrize("kind", ["garbage", "png", "empty", "truncated"])
def test_it_refuses_what_is_not_a_readable_video(
    kind: str, scenes_clip: Path, tmp_path: Path
) -> None:
    path = tmp_path / f"{kind}.mp4"
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(20_000))
    elif kind == "png":
        Image.fromarray(_source_frame(0)).save(path, format="PNG")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        whole = scenes_clip.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(UnreadableVideo):
        sample_video(path)
