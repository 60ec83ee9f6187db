"""Opening a video file that nobody here vouches for: an upload, or a stored render read back.

FFmpeg gets a file object, never a path or URL, and may probe it only with the MP4/MOV and
Matroska/WebM demuxers; every nested open (a MOV data reference, a playlist entry) fails, and a
frame claiming more than `max_pixels` is refused before it is allocated.
"""

from __future__ import annotations

from typing import IO

import av
from av.container import InputContainer
from av.video.stream import VideoStream

# Phones record MP4/MOV, browsers' MediaRecorder WebM (Matroska) or MP4; renders are MP4.
CONTAINER_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
READ_BUFFER_BYTES = 64 * 1024

_CONTAINER_OPTIONS = {
    "format_whitelist": CONTAINER_FORMATS,
    # Matches no protocol: any nested open (a MOV data reference, a playlist entry) fails.
    "protocol_whitelist": "none",
    "enable_drefs": "0",
    "max_streams": "16",
}


def open_untrusted(file: IO[bytes], *, max_pixels: int) -> InputContainer:
    """The container of `file`. Raises av.error.FFmpegError (or UnicodeDecodeError, from
    PyAV's reading of some garbage) when it is not a readable video container."""
    return av.open(
        file,
        mode="r",
        container_options=_CONTAINER_OPTIONS,
        # For the decoders FFmpeg opens while probing the streams.
        options={"max_pixels": str(max_pixels)},
        buffer_size=READ_BUFFER_BYTES,
    )


def declared_seconds(container: InputContainer, video: VideoStream) -> float | None:
    """How long the file says its video lasts (before decoding: a claim, not a fact)."""
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    if container.duration:
        return float(container.duration / av.time_base)
    return None
