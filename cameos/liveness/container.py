"""Safe, bounded opening of an uploaded registration recording.

An upload is untrusted input handed to FFmpeg, so everything here is bounded before and while
decoding:

- FFmpeg never sees a path or URL: the file is opened by Python and handed over as a file
  object, so no FFmpeg protocol (http, concat, pipe...) can be reached. Only the MP4/MOV and
  Matroska/WebM demuxers may be probed (`format_whitelist`), MOV's external data references
  stay off, and any nested open FFmpeg attempts is refused by an empty protocol whitelist. The
  demuxers that follow references to other files (HLS, concat, image2...) are never used.
- Limits on bytes, duration, resolution (declared and decoded), frame count and the total of
  decoded pixels stop decompression bombs: a small file that declares or decodes to huge
  frames or thousands of frames is refused before, or as soon as, it crosses a limit. The
  decoders also get FFmpeg's own `max_pixels`, so a frame whose bitstream claims a huge size
  fails before its buffers are allocated (a VP8 frame claiming 16000x16000 would take ~450 MB).

Every refusal is a `RecordingRefused` with a stable machine code and a message for the user.
"""

from __future__ import annotations

import io
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from generation.media.untrusted import declared_seconds, open_untrusted


class RefusalCode(StrEnum):
    TOO_LARGE = "too_large"
    NOT_A_VIDEO = "not_a_video"
    UNSUPPORTED_FORMAT = "unsupported_format"
    STILL_IMAGE = "still_image"
    UNSUPPORTED_CODEC = "unsupported_codec"
    NO_VIDEO = "no_video"
    SEVERAL_VIDEOS = "several_videos"
    NO_AUDIO = "no_audio"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    RESOLUTION_TOO_HIGH = "resolution_too_high"
    RESOLUTION_TOO_LOW = "resolution_too_low"
    TOO_MANY_FRAMES = "too_many_frames"
    TOO_MANY_PIXELS = "too_many_pixels"
    TRUNCATED = "truncated"


class RecordingRefused(Exception):  # noqa: N818 (a refusal is an outcome, not a fault)
    """The upload cannot be checked; `code` is stable, `message` is shown to the user."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ContainerLimits:
    # 10 s of 1080p from a phone at ~20 Mb/s is ~25 MB; twice that leaves room for high bitrates.
    max_bytes: int = 50_000_000
    min_seconds: float = 3.0
    max_seconds: float = 10.0
    max_side: int = 1920
    min_short_side: int = 320
    # 10 s at 60 fps with half again as margin for variable frame rate.
    max_frames: int = 900
    # 10 s of 1080p at 60 fps; a bomb crosses it long before it costs minutes of CPU.
    max_decoded_pixels: int = 1_300_000_000
    sample_fps: float = 8.0
    # The frames handed to the checks are scaled down to this: enough for a ~250 px face crop
    # in a 720p or 1080p selfie, small enough that 80 frames fit in ~125 MB.
    working_max_side: int = 960
    audio_sample_rate: int = 16_000
    # A registration must have sound (the spoken digits); a character clip need not.
    requires_audio: bool = True


DEFAULT_LIMITS = ContainerLimits()

ALLOWED_VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
ALLOWED_AUDIO_CODECS = frozenset(
    {"aac", "opus", "vorbis", "mp3", "flac", "pcm_s16le", "pcm_s16be", "pcm_f32le"}
)
# A recording a few frames short of its declared length is still fine (encoders drop some).
DURATION_TOLERANCE_SECONDS = 0.25
TRUNCATED_FRAME_SHORTFALL = 0.05
# Enough audio past the video's end to never cut the last digit; more is not decoded.
AUDIO_TAIL_SECONDS = 1.0


@dataclass(frozen=True)
class SampledFrame:
    time: float  # seconds since the first video frame
    image: np.ndarray  # RGB uint8 (height, width, 3), upright, at the working resolution


@dataclass(frozen=True)
class DecodedRecording:
    frames: tuple[SampledFrame, ...]
    audio: np.ndarray  # float32 mono in [-1, 1] at `audio_sample_rate`
    audio_sample_rate: int
    duration: float  # seconds of video
    width: int  # the source's upright display size
    height: int
    frame_count: int  # every decoded frame, not only the samples
    format_name: str
    video_codec: str
    audio_codec: str


def open_recording(
    source: str | os.PathLike[str] | IO[bytes], limits: ContainerLimits = DEFAULT_LIMITS
) -> DecodedRecording:
    """Decode an uploaded recording into frames sampled at `limits.sample_fps` and 16 kHz audio.

    `source` is a local file path or a readable, seekable binary file object (left open, its
    position is changed). Anything else, such as bytes or a file descriptor, is a TypeError.
    Raises `RecordingRefused` when the upload is not an acceptable recording.
    """
    with _binary_file(source) as file:
        size = file.seek(0, io.SEEK_END)
        if size > limits.max_bytes:
            raise RecordingRefused(
                RefusalCode.TOO_LARGE,
                f"the file is too large: {size / 1e6:.1f} MB, at most "
                f"{limits.max_bytes / 1e6:.0f} MB",
            )
        if size == 0:
            raise RecordingRefused(RefusalCode.NOT_A_VIDEO, "the file is empty, not a video")
        file.seek(0)
        kind = _sniff(file.read(64))
        file.seek(0)
        _refuse_by_kind(kind)
        try:
            container = open_untrusted(file, max_pixels=limits.max_side * limits.max_side)
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            if kind == "video-container":
                raise RecordingRefused(
                    RefusalCode.TRUNCATED,
                    "the video file is truncated or damaged and cannot be read",
                ) from error
            raise RecordingRefused(RefusalCode.NOT_A_VIDEO, "the file is not a video") from error
        with container:
            return _decode(container, limits)


@contextmanager
def _binary_file(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not isinstance(path, str):
            raise TypeError("a recording path must be text, not bytes")
        # Opened by Python, not FFmpeg: "http://..." is only a local file name that is missing.
        with open(path, "rb") as file:
            # A device or FIFO could be endless; only a regular file has a size to check.
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ValueError(f"{path!r} is not a regular file")
            yield file
        return
    if isinstance(source, bytes | bytearray | memoryview | int):
        raise TypeError("pass a path or a binary file object, not raw bytes or a descriptor")
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError(f"cannot read a recording from {type(source).__name__}")
    if not source.seekable():
        raise ValueError("the recording's file object must be seekable")
    yield source


_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00")
_AUDIO_SIGNATURES = (b"ID3", b"fLaC", b"#!AMR", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
_STILL_IMAGE_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"avif")
_ISO_MEDIA_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


def _sniff(head: bytes) -> str:
    """What the first bytes say the file is; FFmpeg's own probe has the last word."""
    if head[4:8] == b"ftyp":
        return "still-image" if head[8:12] in _STILL_IMAGE_BRANDS else "video-container"
    if head[4:8] in _ISO_MEDIA_BOXES or head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video-container"
    if head.startswith(_IMAGE_SIGNATURES) or head.startswith(b"MM\x00*"):
        return "still-image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "still-image"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio"
    if head.startswith(_AUDIO_SIGNATURES) or head.startswith(b"OggS"):
        return "audio"
    return "unknown"


def _refuse_by_kind(kind: str) -> None:
    if kind == "still-image":
        raise RecordingRefused(
            RefusalCode.STILL_IMAGE, "the file is a still image, not a video recording"
        )
    if kind == "audio":
        raise RecordingRefused(RefusalCode.NO_VIDEO, "the file has sound but no video track")


def _decode(container: InputContainer, limits: ContainerLimits) -> DecodedRecording:
    video, audio = _pick_streams(container, limits)
    _check_declared(container, video, limits)
    decoder = _Decoder(container, video, audio, limits)
    decoder.run()
    return decoder.result()


def _pick_streams(
    container: InputContainer, limits: ContainerLimits
) -> tuple[VideoStream, AudioStream | None]:
    videos = list(container.streams.video)
    audios = list(container.streams.audio)
    if not videos:
        if audios:
            raise RecordingRefused(RefusalCode.NO_VIDEO, "the file has sound but no video track")
        raise RecordingRefused(RefusalCode.NOT_A_VIDEO, "the file has no video track")
    if len(videos) > 1:
        raise RecordingRefused(
            RefusalCode.SEVERAL_VIDEOS,
            f"the file has {len(videos)} video tracks; record a single camera",
        )
    video = videos[0]
    if video.codec_context.name not in ALLOWED_VIDEO_CODECS:
        raise RecordingRefused(
            RefusalCode.UNSUPPORTED_CODEC,
            f"unsupported video codec {video.codec_context.name}; "
            "record H.264, HEVC, VP8, VP9 or AV1",
        )
    if not audios:
        if not limits.requires_audio:
            return video, None
        raise RecordingRefused(RefusalCode.NO_AUDIO, "the video has no audio track")
    for audio in audios:
        if audio.codec_context.name in ALLOWED_AUDIO_CODECS:
            return video, audio
    raise RecordingRefused(
        RefusalCode.UNSUPPORTED_CODEC,
        f"unsupported audio codec {audios[0].codec_context.name}; record AAC, Opus or Vorbis",
    )


def _check_declared(container: InputContainer, video: VideoStream, limits: ContainerLimits) -> None:
    """Refuse on what the file declares, before decoding a single frame."""
    _check_resolution(video.codec_context.width, video.codec_context.height, limits)
    declared = declared_seconds(container, video)
    if declared is not None and declared > limits.max_seconds + DURATION_TOLERANCE_SECONDS:
        raise _too_long(declared, limits)
    if video.frames and video.frames > limits.max_frames:
        raise _too_many_frames(limits)


def _check_resolution(width: int, height: int, limits: ContainerLimits) -> None:
    if max(width, height) > limits.max_side:
        raise RecordingRefused(
            RefusalCode.RESOLUTION_TOO_HIGH,
            f"the picture is too large: {width}x{height}, at most "
            f"{limits.max_side}x{limits.max_side}",
        )
    if width and height and min(width, height) < limits.min_short_side:
        raise RecordingRefused(
            RefusalCode.RESOLUTION_TOO_LOW,
            f"the picture is too small: {width}x{height}, at least {limits.min_short_side} "
            "pixels on the short side",
        )


def _too_long(
    seconds: float, limits: ContainerLimits, *, at_least: bool = False
) -> RecordingRefused:
    length = f"more than {seconds:.1f} s" if at_least else f"{seconds:.1f} s"
    return RecordingRefused(
        RefusalCode.TOO_LONG, f"too long: {length}, at most {limits.max_seconds:g} s"
    )


def _too_many_frames(limits: ContainerLimits) -> RecordingRefused:
    return RecordingRefused(
        RefusalCode.TOO_MANY_FRAMES,
        f"the video has too many frames: more than {limits.max_frames}",
    )


class _Decoder:
    """Demuxes once, decoding every video frame (counted against the limits) and the audio."""

    def __init__(
        self,
        container: InputContainer,
        video: VideoStream,
        audio: AudioStream | None,
        limits: ContainerLimits,
    ) -> None:
        self.container = container
        self.video = video
        self.audio = audio
        self.limits = limits
        self.frames: list[SampledFrame] = []
        self.frame_count = 0
        self.decoded_pixels = 0
        self.first_time: float | None = None
        self.last_time = 0.0
        self.next_sample = 0
        self.display_size = (0, 0)
        self.audio_chunks: list[np.ndarray] = []
        self.audio_samples = 0
        self.resampler = av.AudioResampler(
            format="flt", layout="mono", rate=limits.audio_sample_rate
        )
        # The decoder itself refuses frames beyond the limit, should a stream change size.
        video.codec_context.options = {"max_pixels": str(limits.max_side * limits.max_side)}
        video.thread_type = "AUTO"
        rate = video.guessed_rate or video.average_rate
        self.frame_seconds = 1.0 / float(rate) if rate else 1.0 / 30.0
        self.max_audio_samples = int(
            (limits.max_seconds + DURATION_TOLERANCE_SECONDS + AUDIO_TAIL_SECONDS)
            * limits.audio_sample_rate
        )

    def run(self) -> None:
        try:
            streams = [self.video] if self.audio is None else [self.video, self.audio]
            for packet in self.container.demux(*streams):
                if packet.stream is self.video:
                    for frame in packet.decode():
                        self._take_video(frame)
                elif self.audio_samples < self.max_audio_samples:
                    for audio_frame in packet.decode():
                        self._take_audio(audio_frame)
            for chunk in self.resampler.resample(None):
                self._append_audio(chunk.to_ndarray())
        except (av.error.FFmpegError, EOFError) as error:
            raise RecordingRefused(
                RefusalCode.TRUNCATED, "the video file is truncated or damaged and cannot be read"
            ) from error

    def _take_video(self, frame: Any) -> None:
        assert isinstance(frame, VideoFrame)  # noqa: S101 (the demuxed stream is the video)
        limits = self.limits
        self.frame_count += 1
        if self.frame_count > limits.max_frames:
            raise _too_many_frames(limits)
        _check_resolution(frame.width, frame.height, limits)
        self.decoded_pixels += frame.width * frame.height
        if self.decoded_pixels > limits.max_decoded_pixels:
            raise RecordingRefused(
                RefusalCode.TOO_MANY_PIXELS,
                "the video is too large to check: it decodes to more than "
                f"{limits.max_decoded_pixels / 1e6:.0f} megapixels",
            )
        time = frame.time if frame.time is not None else self.frame_count * self.frame_seconds
        if self.first_time is None:
            self.first_time = time
        elapsed = time - self.first_time
        self.last_time = max(self.last_time, elapsed)
        if elapsed > limits.max_seconds + DURATION_TOLERANCE_SECONDS:
            raise _too_long(elapsed, limits, at_least=True)
        if elapsed + 1e-6 >= self.next_sample / limits.sample_fps:
            self.frames.append(SampledFrame(time=elapsed, image=self._to_rgb(frame)))
            self.next_sample = math.floor(elapsed * limits.sample_fps + 1e-6) + 1

    def _to_rgb(self, frame: VideoFrame) -> np.ndarray:
        scale = min(1.0, self.limits.working_max_side / max(frame.width, frame.height))
        width = max(2, round(frame.width * scale / 2) * 2)
        height = max(2, round(frame.height * scale / 2) * 2)
        image: np.ndarray = frame.reformat(
            width=width, height=height, format="rgb24", interpolation="BILINEAR"
        ).to_ndarray()
        # Phones store portrait video as landscape plus a display rotation (counter-clockwise
        # degrees); the face checks need the picture upright.
        quarter_turns = round((frame.rotation or 0) / 90) % 4
        if quarter_turns:
            image = np.ascontiguousarray(np.rot90(image, k=quarter_turns))
        upright = (frame.height, frame.width) if quarter_turns % 2 else (frame.width, frame.height)
        self.display_size = upright
        return image

    def _take_audio(self, frame: Any) -> None:
        for chunk in self.resampler.resample(frame):
            self._append_audio(chunk.to_ndarray())

    def _append_audio(self, samples: np.ndarray) -> None:
        mono = samples.reshape(-1).astype(np.float32, copy=False)
        room = self.max_audio_samples - self.audio_samples
        if room <= 0:
            return
        mono = mono[:room]
        self.audio_chunks.append(mono)
        self.audio_samples += mono.size

    def result(self) -> DecodedRecording:
        limits = self.limits
        if self.frame_count == 0:
            raise RecordingRefused(RefusalCode.TRUNCATED, "the video track has no readable frames")
        if self.frame_count == 1:
            raise RecordingRefused(
                RefusalCode.STILL_IMAGE, "the video is a single still picture, not a recording"
            )
        duration = self.last_time + self.frame_seconds
        declared_frames = self.video.frames
        claimed_seconds = declared_seconds(self.container, self.video)
        is_short_of_frames = bool(declared_frames) and self.frame_count < declared_frames * (
            1 - TRUNCATED_FRAME_SHORTFALL
        )
        is_short_of_time = (
            claimed_seconds is not None
            and duration < claimed_seconds * (1 - TRUNCATED_FRAME_SHORTFALL) - 0.5
        )
        if is_short_of_frames or is_short_of_time:
            raise RecordingRefused(
                RefusalCode.TRUNCATED,
                f"the video file is truncated: it ends after {duration:.1f} s of "
                f"{claimed_seconds or 0:.1f} s",
            )
        if duration < limits.min_seconds - DURATION_TOLERANCE_SECONDS:
            raise RecordingRefused(
                RefusalCode.TOO_SHORT,
                f"too short: {duration:.1f} s, at least {limits.min_seconds:g} s",
            )
        if self.audio_samples == 0 and limits.requires_audio:
            raise RecordingRefused(RefusalCode.NO_AUDIO, "the audio track is empty")
        audio = (
            np.clip(np.concatenate(self.audio_chunks), -1.0, 1.0).astype(np.float32)
            if self.audio_chunks else np.zeros(0, dtype=np.float32)
        )
        width, height = self.display_size
        return DecodedRecording(
            frames=tuple(self.frames),
            audio=audio,
            audio_sample_rate=limits.audio_sample_rate,
            duration=duration,
            width=width,
            height=height,
            frame_count=self.frame_count,
            format_name=self.container.format.name,
            video_codec=self.video.codec_context.name,
            audio_codec=self.audio.codec_context.name if self.audio is not None else "",
        )
