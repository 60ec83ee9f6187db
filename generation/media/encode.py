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
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageFont

from generation.backends.base import ProgressCallback, RenderedClip

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

# veryfast keeps a 4 s 720x1280 encode around 2 s on two cores; crf 23 is x264's default quality.
# A two-second GOP keeps seeking cheap.
X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "23",
    "profile": "high",
    "x264-params": "keyint=48:min-keyint=24",
}
# x264's bitstream depends on its thread count, so it is fixed rather than taken from the
# machine: the same clip encodes to the same bytes everywhere.
X264_THREADS = 3
AAC_BIT_RATE = 128_000
AAC_SAMPLE_RATES = frozenset(
    {96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000}
)
AAC_FALLBACK_SAMPLE_RATE = 48_000
AUDIO_CHUNK_SAMPLES = 1024  # one AAC frame
PROGRESS_REPORTS = 25


@dataclass(frozen=True)
class EncodedMedia:
    video: Path
    thumbnail: Path
    spritesheet: Path
    duration_seconds: float
    width: int
    height: int
    frame_count: int
    # The spritesheet is a grid read left to right, top to bottom; tile k shows the frame at
    # the middle of the k-th of `spritesheet_columns * spritesheet_rows`-ish equal intervals.
    spritesheet_columns: int
    spritesheet_rows: int
    spritesheet_tile_width: int
    spritesheet_tile_height: int


def encode_clip(
    clip: RenderedClip, out_dir: Path, progress: ProgressCallback | None = None
) -> EncodedMedia:
    """Encode `clip` into `out_dir` (created if missing), overwriting earlier output.

    `progress` receives 0-100 as frames are encoded; whatever it raises propagates, and no
    partial file is left behind.
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
    partial_paths = [path.with_name(path.name + ".partial") for path in
                     (video_path, thumbnail_path, spritesheet_path)]
    try:
        media = _encode(clip, *partial_paths, progress=progress)
        for partial, final in zip(partial_paths, (video_path, thumbnail_path, spritesheet_path),
                                  strict=True):
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
    watermark = _Watermark(width, height, clip.fps)
    thumbnail_index = clip.frame_count // 2
    tile_count = min(SPRITESHEET_MAX_TILES, clip.frame_count)
    tile_indices = {
        min(clip.frame_count - 1, int((tile + 0.5) * clip.frame_count / tile_count)): tile
        for tile in range(tile_count)
    }
    tile_width, tile_height = _fit_within(width, height, SPRITESHEET_TILE_MAX_SIDE)
    tiles: dict[int, Image.Image] = {}
    thumbnail: Image.Image | None = None
    report_every = max(1, clip.frame_count // PROGRESS_REPORTS)

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
        all_frames = _prepend(first_frame, frames)
        for frame_index, frame in enumerate(all_frames):
            canvas = np.array(frame, dtype=np.uint8, copy=True)
            watermark.burn_into(canvas, frame_index)
            if frame_index == thumbnail_index:
                thumbnail = _downscale(canvas, *_fit_within(width, height, THUMBNAIL_MAX_SIDE))
            if frame_index in tile_indices:
                tiles[tile_indices[frame_index]] = _downscale(canvas, tile_width, tile_height)

            video_frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
            )
            video_frame.pts = frame_index
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

    if thumbnail is None:
        raise AssertionError("thumbnail frame was never reached")
    thumbnail.save(thumbnail_path, format="WEBP", quality=82, method=4)
    rows = math.ceil(tile_count / SPRITESHEET_COLUMNS)
    columns = min(SPRITESHEET_COLUMNS, tile_count)
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height))
    for tile, image in tiles.items():
        sheet.paste(image, ((tile % columns) * tile_width, (tile // columns) * tile_height))
    sheet.save(spritesheet_path, format="JPEG", quality=80, optimize=True)

    return EncodedMedia(
        video=video_path,
        thumbnail=thumbnail_path,
        spritesheet=spritesheet_path,
        duration_seconds=clip.frame_count / clip.fps,
        width=width,
        height=height,
        frame_count=clip.frame_count,
        spritesheet_columns=columns,
        spritesheet_rows=rows,
        spritesheet_tile_width=tile_width,
        spritesheet_tile_height=tile_height,
    )


def _checked_frames(clip: RenderedClip) -> Iterator[np.ndarray]:
    """Yield exactly `clip.frame_count` frames, all the same RGB shape, or raise ValueError."""
    expected_shape: tuple[int, ...] | None = None
    frame_index = -1
    for frame_index, frame in enumerate(clip.frames):
        if frame_index >= clip.frame_count:
            raise ValueError(f"clip yielded more than its frame_count of {clip.frame_count}")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {frame_index} is not an RGB uint8 array: "
                             f"{frame.dtype} {frame.shape}")
        if expected_shape is None:
            expected_shape = frame.shape
        elif frame.shape != expected_shape:
            raise ValueError(f"frame {frame_index} has shape {frame.shape}, "
                             f"expected {expected_shape}")
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


def _add_video_stream(
    container: OutputContainer, width: int, height: int, fps: int
) -> VideoStream:
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
        font = ImageFont.load_default(size=max(10, round(min(width, height) * 0.026)))
        left, top, right, bottom = font.getbbox(WATERMARK_TEXT)
        shadow_offset = max(1, round(font.size / 14))
        overlay = Image.new(
            "RGBA", (right - left + shadow_offset, bottom - top + shadow_offset), (0, 0, 0, 0)
        )
        draw = ImageDraw.Draw(overlay)
        opacity = round(255 * WATERMARK_OPACITY)
        draw.text((shadow_offset - left, shadow_offset - top), WATERMARK_TEXT, font=font,
                  fill=(0, 0, 0, opacity // 2))
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


def _triangle_wave(phase: float) -> float:
    """0 -> 1 -> 0 as `phase` goes 0 -> 1 -> 2, repeating: a bounce between two edges."""
    return 1.0 - abs(phase % 2.0 - 1.0)
