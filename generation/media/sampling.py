"""Frames of a stored video, sampled once for every output check.

    sample = sample_video(stored_mp4)
    for frame in sample.frames:  # regular samples plus scene changes, in time order
        frame.time, frame.image, frame.is_scene_change

Every decoded frame is compared with the one before it on a tiny grayscale thumbnail (cheap: a
few hundred bytes per frame), so a cut is found wherever it falls; only the kept frames are
converted to full-resolution RGB. Checks share derived results (face tracks, adult-content
scores) through `SampledVideo.memo`, so each is computed once per video.

The file is decoded as untrusted input, as registration uploads are: FFmpeg is handed a file
object rather than a path, only the MP4/MOV and Matroska/WebM demuxers may probe it, no nested
open is allowed, and the decoded seconds and frame sizes are bounded.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from generation.media.untrusted import declared_seconds, open_untrusted

DEFAULT_PER_SECOND = 2.0
# 64 frames of 720x1280 RGB are ~177 MB; a 20 s render at 2 per second needs 41 of them.
DEFAULT_MAX_FRAMES = 64
# Mean absolute difference of consecutive thumbnails, in grey levels (0-255). Measured: frames
# of the reference backend's rainy-city render differ by at most 6.5, a fast pan over smooth
# scenery (tests/generation/test_sampling.py) by ~10, and that test's cuts between unrelated
# scenes by 44-52. A cut between two shots of similar light and layout can stay below it (the
# regular samples still see the new shot), and fast, fine, high-contrast texture could pass it.
DEFAULT_SCENE_THRESHOLD = 25.0
# Our renders last at most ~20 s; anything much longer is not one of them.
DEFAULT_MAX_SECONDS = 30.0
# At most this share of `max_frames` goes to scene changes, so a flickering video cannot crowd
# out the regular samples that cover the whole of it.
SCENE_CHANGE_SHARE = 0.25
# Long side of the grayscale thumbnail every decoded frame is reduced to for cut detection.
THUMBNAIL_LONG_SIDE = 64
# 4K is the largest frame any backend renders; FFmpeg refuses larger frames before allocating.
MAX_FRAME_PIXELS = 3840 * 2160
# A video a few frames longer than the limit (encoder padding) is still accepted.
DURATION_TOLERANCE_SECONDS = 0.25


class UnreadableVideo(Exception):  # noqa: N818 (named for what the caller learns about the file)
    """The file cannot be sampled: not a video, damaged, or beyond the decoding limits."""


@dataclass(frozen=True)
class SampledFrame:
    time: float  # seconds since the first video frame
    # RGB uint8 (height, width, 3), C-contiguous, upright, full resolution. Read-only: every
    # check sees the same array, so none may draw on it (copy first).
    image: np.ndarray = field(repr=False)
    # True when the picture cut to a new scene after the previous kept frame: this frame, or a
    # dropped one between them, differs strongly from the decoded frame just before it.
    is_scene_change: bool


@dataclass
class SampledVideo:
    frames: list[SampledFrame]  # in time order; the first decoded frame is always the first
    width: int  # upright display size of the frames
    height: int
    duration: float  # seconds of video decoded
    decoded_frame_count: int  # every decoded frame, not only the kept ones
    # Results derived from these frames, shared between the checks of one video (for example
    # `cameos.faces.tracks.face_tracks` keeps its tracks here). Keys name the producer and
    # whatever its result depends on, such as the face engine id.
    memo: dict[str, Any] = field(default_factory=dict, repr=False)


def sample_video(
    path: str | os.PathLike[str],
    *,
    per_second: float = DEFAULT_PER_SECOND,
    max_frames: int = DEFAULT_MAX_FRAMES,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> SampledVideo:
    """Decode the video at `path` and keep frames `per_second` apart plus every scene change.

    Regular samples are the first frames at or after 0, 1/per_second, 2/per_second... seconds.
    A scene change is a frame whose thumbnail differs from the previous decoded frame's by more
    than `scene_threshold` (mean grey levels); it is kept in addition, up to a quarter of
    `max_frames`. Should the regular samples alone overflow `max_frames`, every other one is
    dropped and the rate halved, so the samples always span the whole video.

    Raises `UnreadableVideo` when the file is not a video, is damaged, has no video frame, or
    lasts more than `max_seconds`.
    """
    if per_second <= 0:
        raise ValueError(f"per_second must be positive, got {per_second}")
    if max_frames < 4:
        raise ValueError(f"max_frames must be at least 4, got {max_frames}")
    with open(path, "rb") as file:
        # A device or FIFO could be endless; only a regular file has a size and an end.
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise UnreadableVideo(f"{os.fspath(path)!r} is not a regular file")
        # FFmpeg's probe would fail on an empty file with a bare seek error.
        if os.fstat(file.fileno()).st_size == 0:
            raise UnreadableVideo("the file is empty")
        try:
            container = open_untrusted(file, max_pixels=MAX_FRAME_PIXELS)
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise UnreadableVideo("the file is not a readable video") from error
        with container:
            sampler = _Sampler(
                container,
                per_second=per_second,
                max_frames=max_frames,
                scene_threshold=scene_threshold,
                max_seconds=max_seconds,
            )
            return sampler.run()


@dataclass
class _Kept:
    frame: SampledFrame
    # k when this is the regular sample for k * interval seconds; None for a scene change only.
    regular_slot: int | None


class _Sampler:
    """One pass over the video stream: thumbnails for every frame, RGB for the kept ones."""

    def __init__(
        self,
        container: InputContainer,
        *,
        per_second: float,
        max_frames: int,
        scene_threshold: float,
        max_seconds: float,
    ) -> None:
        videos = list(container.streams.video)
        if not videos:
            raise UnreadableVideo("the file has no video track")
        self.container = container
        self.video: VideoStream = videos[0]
        self.video.thread_type = "AUTO"
        self.video.codec_context.options = {"max_pixels": str(MAX_FRAME_PIXELS)}
        self.interval = 1.0 / per_second
        self.max_frames = max_frames
        self.max_scene_changes = max(1, math.floor(max_frames * SCENE_CHANGE_SHARE))
        self.scene_threshold = scene_threshold
        self.max_seconds = max_seconds
        self.kept: list[_Kept] = []
        self.scene_change_count = 0
        self.next_slot = 0
        self.previous_thumbnail: np.ndarray | None = None
        # A cut seen since the last kept frame (the cut frame itself may have been dropped
        # once the scene-change budget is spent): the next kept frame starts a new scene.
        self.is_cut_pending = False
        self.first_time: float | None = None
        self.last_time = 0.0
        self.decoded_frame_count = 0
        self.display_size = (0, 0)
        rate = self.video.guessed_rate or self.video.average_rate
        self.frame_seconds = 1.0 / float(rate) if rate else 1.0 / 30.0

    def run(self) -> SampledVideo:
        declared = declared_seconds(self.container, self.video)
        if declared is not None and declared > self.max_seconds + DURATION_TOLERANCE_SECONDS:
            raise UnreadableVideo(
                f"the video lasts {declared:.1f} s, more than {self.max_seconds:g} s"
            )
        try:
            for packet in self.container.demux(self.video):
                for frame in packet.decode():
                    self._take(frame)
        except (av.error.FFmpegError, EOFError) as error:
            raise UnreadableVideo("the video is truncated or damaged") from error
        if not self.kept:
            raise UnreadableVideo("the video track has no readable frame")
        width, height = self.display_size
        return SampledVideo(
            frames=[kept.frame for kept in self.kept],
            width=width,
            height=height,
            duration=self.last_time + self.frame_seconds,
            decoded_frame_count=self.decoded_frame_count,
        )

    def _take(self, frame: Any) -> None:
        assert isinstance(frame, VideoFrame)  # noqa: S101 (only the video stream is demuxed)
        self.decoded_frame_count += 1
        if frame.width * frame.height > MAX_FRAME_PIXELS:
            raise UnreadableVideo(f"a frame of {frame.width}x{frame.height} is too large")
        time = (
            frame.time
            if frame.time is not None
            else (self.decoded_frame_count - 1) * self.frame_seconds
        )
        if self.first_time is None:
            self.first_time = time
        elapsed = max(0.0, time - self.first_time)
        self.last_time = max(self.last_time, elapsed)
        if elapsed > self.max_seconds + DURATION_TOLERANCE_SECONDS:
            raise UnreadableVideo(f"the video lasts more than {self.max_seconds:g} s")

        thumbnail = _thumbnail(frame)
        is_cut = (
            self.previous_thumbnail is not None
            and _difference(thumbnail, self.previous_thumbnail) > self.scene_threshold
        )
        self.previous_thumbnail = thumbnail
        self.is_cut_pending = self.is_cut_pending or is_cut

        is_regular = elapsed + 1e-6 >= self.next_slot * self.interval
        is_extra_cut = (
            is_cut and not is_regular and self.scene_change_count < self.max_scene_changes
        )
        if not (is_regular or is_extra_cut):
            return
        slot = None
        if is_regular:
            slot = math.floor(elapsed / self.interval + 1e-6)
            self.next_slot = slot + 1
        if is_extra_cut:
            self.scene_change_count += 1
        sampled = SampledFrame(
            time=elapsed, image=self._to_rgb(frame), is_scene_change=self.is_cut_pending
        )
        self.is_cut_pending = False
        self.kept.append(_Kept(frame=sampled, regular_slot=slot))
        while len(self.kept) > self.max_frames:
            self._halve_rate()

    def _halve_rate(self) -> None:
        """Drop every other regular sample and sample half as often; scene changes kept for a
        cut stay. A dropped frame's cut is passed on to the next frame that remains."""
        remaining: list[_Kept] = []
        is_cut_carried = False
        for kept in self.kept:
            slot = kept.regular_slot
            if slot is not None and slot % 2 == 1:
                is_cut_carried = is_cut_carried or kept.frame.is_scene_change
                continue
            frame = kept.frame
            if is_cut_carried and not frame.is_scene_change:
                frame = dataclasses.replace(frame, is_scene_change=True)
            is_cut_carried = False
            remaining.append(_Kept(frame, None if slot is None else slot // 2))
        self.kept = remaining
        self.is_cut_pending = self.is_cut_pending or is_cut_carried
        self.interval *= 2
        self.next_slot = math.ceil(self.next_slot / 2)

    def _to_rgb(self, frame: VideoFrame) -> np.ndarray:
        image: np.ndarray = frame.reformat(format="rgb24").to_ndarray()
        # Phones store portrait video as landscape plus a display rotation (counter-clockwise
        # degrees); checks need the picture upright.
        quarter_turns = round((frame.rotation or 0) / 90) % 4
        if quarter_turns:
            image = np.rot90(image, k=quarter_turns)
        image = np.ascontiguousarray(image)
        image.flags.writeable = False
        self.display_size = (image.shape[1], image.shape[0])
        return image


def _thumbnail(frame: VideoFrame) -> np.ndarray:
    """A grey thumbnail (long side THUMBNAIL_LONG_SIDE) as int16, ready to subtract."""
    scale = THUMBNAIL_LONG_SIDE / max(frame.width, frame.height)
    width = max(4, round(frame.width * scale))
    height = max(4, round(frame.height * scale))
    # AREA averages every source pixel, so noise and fine texture do not alias into the
    # thumbnail and pass for a cut.
    grey = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
    return grey.to_ndarray().astype(np.int16)


def _difference(first: np.ndarray, second: np.ndarray) -> float:
    if first.shape != second.shape:  # the stream changed size mid-way: certainly a new scene
        return math.inf
    return float(np.abs(first - second).mean())

