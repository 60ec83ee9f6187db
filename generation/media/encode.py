"""Turn a `RenderedClip` into the files a video resource serves.

Every backend shares this: an MP4 (H.264 yuv420p + AAC, moov atom first so playback starts
before the download ends), a WebP thumbnail and a JPEG spritesheet for scrubbing previews. A
drifting "AI-generated" watermark is burned into every frame here, so no backend can skip it.

Frames are streamed: only the downscaled frames the thumbnail and spritesheet need are kept.
Identical input gives identical output files (fixed encoder settings and thread count, bitexact
muxing, no timestamps in the metadata).
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageFont

from generation.backends.base import ProgressCallback, RenderedClip

Item = TypeVar("Item")

VIDEO_FILENAME = "video.mp4"
THUMBNAIL_FILENAME = "thumbnail.webp"
SPRITESHEET_FILENAME = "spritesheet.jpg"

THUMBNAIL_MAX_SIDE = 640
SPRITESHEET_MAX_TILES = 10
SPRITESHEET_COLUMNS = 5
SPRITESHEET_TILE_MAX_SIDE = 160

WATERMARK_TEXT = "AI-generated · sora-social"
# Seconds the watermark takes to cross the frame; different on each axis so it wanders.
WATERMARK_CROSSING_SECONDS = (7.0, 11.0)
WATERMARK_OPACITY = 0.55

# veryfast keeps a 4 s 720x1280 encode well under 2 s of CPU on two cores. A two-second GOP
# keeps seeking cheap. mbtree is off because x264's SIMD macroblock-tree code reads
# uninitialised memory at widths like 720 (45 macroblocks), so identical input encoded
# differently from run to run; crf 25 without mbtree matches the quality of x264's default
# (crf 23 with mbtree) for about a fifth more bytes.
X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "25",
    "profile": "high",
    "x264-params": "keyint=48:min-keyint=24:mbtree=0",
}
# x264's bitstream depends on its thread count, so it is fixed rather than taken from the
# machine: the same clip encodes to the same bytes on any machine with the same PyAV build.
X264_THREADS = 3
AAC_BIT_RATE = 128_000
AAC_SAMPLE_RATES = frozenset(
    {96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000}
)
AAC_FALLBACK_SAMPLE_RATE = 48_000
AUDIO_CHUNK_SAMPLES = 1024  # one AAC frame
PREFETCH_FRAMES = 4
# About this many progress reports per clip, and never more often than every few frames:
# the callback may write to the database.
PROGRESS_REPORTS = 25
PROGRESS_MIN_FRAMES = 4


@dataclass(frozen=True)
class EncodedMedia:
    video: Path
    thumbnail: Path
    spritesheet: Path
    duration_seconds: float
    width: int
    height: int
    frame_count: int
    # The spritesheet is a grid read left to right, top to bottom. With N tiles (10, or fewer
    # for a clip with fewer frames) tile k shows the middle frame of the k-th of N equal
    # stretches of the clip.
    spritesheet_columns: int
    spritesheet_rows: int
    spritesheet_tile_width: int
    spritesheet_tile_height: int


def encode_clip(
    clip: RenderedClip, out_dir: Path, progress: ProgressCallback | None = None
) -> EncodedMedia:
    """Encode `clip` into `out_dir` (created if missing), overwriting earlier output.

    `progress` receives 0-100 as frames are encoded, on the calling thread; whatever it raises
    propagates, and no partial file is left behind. `clip.frames` is consumed on a worker
    thread (after the first frame), so that rendering overlaps encoding.
    """
    if clip.fps <= 0:
        raise ValueError(f"fps must be positive, got {clip.fps}")
    if clip.frame_count <= 0:
        raise ValueError(f"frame_count must be positive, got {clip.frame_count}")
    if clip.sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {clip.sample_rate}")

    out_dir.mkdir(parents=True, exist_ok=True)
    video_path = out_dir / VIDEO_FILENAME
    thumbnail_path = out_dir / THUMBNAIL_FILENAME
    spritesheet_path = out_dir / SPRITESHEET_FILENAME
    partial_paths = [
        path.with_name(path.name + ".partial")
        for path in (video_path, thumbnail_path, spritesheet_path)
    ]
    try:
        media = _encode(clip, *partial_paths, progress=progress)
        for partial, final in zip(
            partial_paths, (video_path, thumbnail_path, spritesheet_path), strict=True
        ):
            partial.replace(final)
    finally:
        for partial in partial_paths:
            partial.unlink(missing_ok=True)
    if progress is not None:
        progress(100)
    return dataclasses.replace(
        media, video=video_path, thumbnail=thumbnail_path, spritesheet=spritesheet_path
    )


def _encode(
    clip: RenderedClip,
    video_path: Path,
    thumbnail_path: Path,
    spritesheet_path: Path,
    *,
    progress: ProgressCallback | None,
) -> EncodedMedia:
    frames = _checked_frames(clip)
    first_frame = next(frames)
    height, width = first_frame.shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even dimensions, got {width}x{height}")

    audio, sample_rate = _prepare_audio(clip)
    preparer = _FramePreparer(width, height, clip.fps, clip.frame_count)
    report_every = max(PROGRESS_MIN_FRAMES, math.ceil(clip.frame_count / PROGRESS_REPORTS))

    if progress is not None:
        progress(0)
    with av.open(
        str(video_path),
        mode="w",
        format="mp4",
        options={"movflags": "+faststart", "fflags": "+bitexact"},
    ) as container:
        video_stream = _add_video_stream(container, width, height, clip.fps)
        audio_stream = _add_audio_stream(container, sample_rate)
        audio_cursor = 0
        prepared_frames = preparer.prepare_all(_prepend(first_frame, frames))
        with _Prefetcher(prepared_frames, depth=PREFETCH_FRAMES) as prefetched:
            for frame_index, video_frame in enumerate(prefetched):
                container.mux(video_stream.encode(video_frame))
                # Audio follows the video closely so the file is interleaved for streaming.
                audio_target = min(len(audio), (frame_index + 1) * sample_rate // clip.fps)
                audio_cursor = _encode_audio_until(
                    container, audio_stream, audio, audio_cursor, audio_target, sample_rate
                )
                if progress is not None and (frame_index + 1) % report_every == 0:
                    progress(min(99, (frame_index + 1) * 100 // clip.frame_count))

        container.mux(video_stream.encode(None))
        _encode_audio_until(
            container, audio_stream, audio, audio_cursor, len(audio), sample_rate, final=True
        )
        container.mux(audio_stream.encode(None))

    preparer.save_thumbnail(thumbnail_path)
    preparer.save_spritesheet(spritesheet_path)
    return EncodedMedia(
        video=video_path,
        thumbnail=thumbnail_path,
        spritesheet=spritesheet_path,
        duration_seconds=clip.frame_count / clip.fps,
        width=width,
        height=height,
        frame_count=clip.frame_count,
        spritesheet_columns=preparer.spritesheet_columns,
        spritesheet_rows=preparer.spritesheet_rows,
        spritesheet_tile_width=preparer.tile_size[0],
        spritesheet_tile_height=preparer.tile_size[1],
    )


class _FramePreparer:
    """Watermarks each frame, keeps the downscaled previews and converts to yuv420p."""

    def __init__(self, width: int, height: int, fps: int, frame_count: int) -> None:
        self._watermark = _Watermark(width, height, fps)
        self._thumbnail_index = frame_count // 2
        self._thumbnail_size = _fit_within(width, height, THUMBNAIL_MAX_SIDE)
        tile_count = min(SPRITESHEET_MAX_TILES, frame_count)
        # Tile k shows the middle frame of the k-th of tile_count equal stretches of the clip.
        self._tile_of_frame = {
            min(frame_count - 1, int((tile + 0.5) * frame_count / tile_count)): tile
            for tile in range(tile_count)
        }
        self.tile_size = _fit_within(width, height, SPRITESHEET_TILE_MAX_SIDE)
        self.spritesheet_columns = min(SPRITESHEET_COLUMNS, tile_count)
        self.spritesheet_rows = math.ceil(tile_count / self.spritesheet_columns)
        self._thumbnail: Image.Image | None = None
        self._tiles: dict[int, Image.Image] = {}

    def prepare_all(self, frames: Iterator[np.ndarray]) -> Iterator[av.VideoFrame]:
        for frame_index, frame in enumerate(frames):
            # A copy: the backend may hand out the same array again, or a read-only one.
            canvas = np.array(frame, dtype=np.uint8, copy=True)
            self._watermark.burn_into(canvas, frame_index)
            if frame_index == self._thumbnail_index:
                self._thumbnail = _downscale(canvas, *self._thumbnail_size)
            if frame_index in self._tile_of_frame:
                self._tiles[self._tile_of_frame[frame_index]] = _downscale(canvas, *self.tile_size)
            video_frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
            )
            video_frame.pts = frame_index
            yield video_frame

    def save_thumbnail(self, path: Path) -> None:
        """Precondition: every frame went through `prepare_all`."""
        if self._thumbnail is None:
            raise AssertionError("the thumbnail frame was never prepared")
        self._thumbnail.save(path, format="WEBP", quality=82, method=4)

    def save_spritesheet(self, path: Path) -> None:
        """Precondition: every frame went through `prepare_all`."""
        tile_width, tile_height = self.tile_size
        columns = self.spritesheet_columns
        sheet = Image.new("RGB", (columns * tile_width, self.spritesheet_rows * tile_height))
        for tile, image in self._tiles.items():
            sheet.paste(image, ((tile % columns) * tile_width, (tile // columns) * tile_height))
        sheet.save(path, format="JPEG", quality=80, optimize=True)


class _Prefetcher(Generic[Item]):
    """Runs an iterator on a worker thread, up to `depth` items ahead of the consumer.

    Rendering and colour conversion release the GIL, as does x264, so a 2-core machine
    renders the next frames while the current one encodes. An exception in the worker is
    raised in the consumer; leaving the `with` block early stops the worker and closes the
    iterator.
    """

    def __init__(self, items: Iterator[Item], depth: int) -> None:
        self._items = items
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="encode-prefetch", daemon=True)

    def __enter__(self) -> Iterator[Item]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exception: object) -> None:
        self._stopping.set()
        self._thread.join()

    def _consume(self) -> Iterator[Item]:
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._offer("item", item):
                    return
        except BaseException as error:  # whatever it is, the consumer re-raises it
            self._offer("error", error)
            return
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
        self._offer("end", None)

    def _offer(self, kind: str, value: object) -> bool:
        """Queue a message unless the consumer has gone; False once it has."""
        while not self._stopping.is_set():
            try:
                self._queue.put((kind, value), timeout=0.05)
            except queue.Full:
                continue
            return True
        return False


def _checked_frames(clip: RenderedClip) -> Iterator[np.ndarray]:
    """Yield exactly `clip.frame_count` frames, all the same RGB shape, or raise ValueError."""
    expected_shape: tuple[int, ...] | None = None
    frame_index = -1
    for frame_index, frame in enumerate(clip.frames):
        if frame_index >= clip.frame_count:
            raise ValueError(f"clip yielded more than its frame_count of {clip.frame_count}")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"frame {frame_index} is not an RGB uint8 array: {frame.dtype} {frame.shape}"
            )
        if expected_shape is None:
            expected_shape = frame.shape
        elif frame.shape != expected_shape:
            raise ValueError(
                f"frame {frame_index} has shape {frame.shape}, expected {expected_shape}"
            )
        yield frame
    if frame_index + 1 != clip.frame_count:
        raise ValueError(f"clip yielded {frame_index + 1} frames, expected {clip.frame_count}")


def _prepend(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _prepare_audio(clip: RenderedClip) -> tuple[np.ndarray, int]:
    """Mono float32 samples at an AAC sample rate, exactly as long as the video."""
    samples = np.asarray(clip.audio, dtype=np.float32).reshape(-1)
    sample_rate = clip.sample_rate
    if sample_rate not in AAC_SAMPLE_RATES:
        samples = resample_audio(samples, sample_rate, AAC_FALLBACK_SAMPLE_RATE)
        sample_rate = AAC_FALLBACK_SAMPLE_RATE
    expected = clip.frame_count * sample_rate // clip.fps
    fitted = np.zeros(expected, dtype=np.float32)
    kept = min(expected, len(samples))
    fitted[:kept] = np.clip(samples[:kept], -1.0, 1.0)
    return fitted, sample_rate


def resample_audio(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono float32 `samples` converted from `from_rate` to `to_rate` (FFmpeg's resampler)."""
    if from_rate == to_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    source = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32)[np.newaxis, :], format="flt", layout="mono"
    )
    source.sample_rate = from_rate
    source.pts = 0
    converted = [*resampler.resample(source), *resampler.resample(None)]
    if not converted:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in converted])


def _add_video_stream(container: OutputContainer, width: int, height: int, fps: int) -> VideoStream:
    stream = container.add_stream("libx264", rate=Fraction(fps, 1), options=X264_OPTIONS)
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, fps)
    stream.codec_context.thread_count = X264_THREADS
    stream.codec_context.color_primaries = ColorPrimaries.BT709
    stream.codec_context.color_trc = ColorTrc.BT709
    stream.codec_context.colorspace = Colorspace.ITU709
    stream.codec_context.color_range = ColorRange.MPEG
    return stream


def _add_audio_stream(container: OutputContainer, sample_rate: int) -> AudioStream:
    stream = container.add_stream("aac", rate=sample_rate, layout="mono")
    stream.bit_rate = AAC_BIT_RATE
    stream.time_base = Fraction(1, sample_rate)
    stream.codec_context.flags |= av.codec.context.Flags.bitexact
    return stream


def _encode_audio_until(
    container: OutputContainer,
    stream: AudioStream,
    audio: np.ndarray,
    cursor: int,
    target: int,
    sample_rate: int,
    *,
    final: bool = False,
) -> int:
    """Encode whole AAC frames from `cursor` up to `target` (and the remainder if `final`)."""
    while cursor + AUDIO_CHUNK_SAMPLES <= target or (final and cursor < target):
        end = min(cursor + AUDIO_CHUNK_SAMPLES, target)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio[np.newaxis, cursor:end]), format="fltp", layout="mono"
        )
        frame.sample_rate = sample_rate
        frame.pts = cursor
        container.mux(stream.encode(frame))
        cursor = end
    return cursor


def _fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _downscale(frame: np.ndarray, width: int, height: int) -> Image.Image:
    image = Image.fromarray(frame)
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)


class _Watermark:
    """The watermark drawn once as an overlay, then blended at a new position every frame."""

    def __init__(self, width: int, height: int, fps: int) -> None:
        self._frame_width = width
        self._frame_height = height
        self._fps = fps
        self._margin = max(2, round(min(width, height) * 0.03))
        font = load_font(max(10, round(min(width, height) * 0.026)))
        left, top, right, bottom = (round(edge) for edge in font.getbbox(WATERMARK_TEXT))
        shadow_offset = max(1, round(font.size / 14))
        overlay = Image.new(
            "RGBA", (right - left + shadow_offset, bottom - top + shadow_offset), (0, 0, 0, 0)
        )
        draw = ImageDraw.Draw(overlay)
        opacity = round(255 * WATERMARK_OPACITY)
        draw.text(
            (shadow_offset - left, shadow_offset - top),
            WATERMARK_TEXT,
            font=font,
            fill=(0, 0, 0, opacity // 2),
        )
        draw.text((-left, -top), WATERMARK_TEXT, font=font, fill=(255, 255, 255, opacity))

        rgba = np.asarray(overlay)
        # Never larger than the frame, even for thumbnail-sized clips.
        rgba = rgba[: max(0, height - 2 * self._margin), : max(0, width - 2 * self._margin)]
        alpha = rgba[..., 3:4].astype(np.uint16)
        alpha += alpha >> 7  # 0..255 -> 0..256 so that the blend below can shift by 8
        self._alpha_complement = (256 - alpha).astype(np.uint16)
        self._premultiplied = (rgba[..., :3].astype(np.uint16) * alpha).astype(np.uint16)
        self._overlay_height, self._overlay_width = alpha.shape[:2]

    def position(self, frame_index: int) -> tuple[int, int]:
        seconds = frame_index / self._fps
        travel_x = max(0, self._frame_width - self._overlay_width - 2 * self._margin)
        travel_y = max(0, self._frame_height - self._overlay_height - 2 * self._margin)
        x_crossing, y_crossing = WATERMARK_CROSSING_SECONDS
        x = self._margin + round(_triangle_wave(seconds / x_crossing + 0.15) * travel_x)
        y = self._margin + round(_triangle_wave(seconds / y_crossing + 0.05) * travel_y)
        return x, y

    def burn_into(self, frame: np.ndarray, frame_index: int) -> None:
        if self._overlay_width == 0 or self._overlay_height == 0:
            return
        x, y = self.position(frame_index)
        region = frame[y : y + self._overlay_height, x : x + self._overlay_width]
        blended = (region * self._alpha_complement + self._premultiplied) >> 8
        region[...] = blended.astype(np.uint8)


def load_font(size: int) -> ImageFont.FreeTypeFont:
    """The font bundled with Pillow (Aileron), so rendering needs no system fonts."""
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; captions need it")
    return font


def _triangle_wave(phase: float) -> float:
    """0 -> 1 -> 0 as `phase` goes 0 -> 1 -> 2, repeating: a bounce between two edges."""
    return 1.0 - abs(phase % 2.0 - 1.0)
