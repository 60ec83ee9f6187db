"""Short clips of a still image slowly panned and zoomed: character registrations in tests."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def still_clip(
    folder: Path,
    image: np.ndarray,
    *,
    seconds: float = 3.0,
    size: tuple[int, int] = (480, 360),
    fps: int = 12,
    with_audio: bool = False,
) -> Path:
    """An H.264 MP4 that pans over `image` (cached in `folder` by content and parameters)."""
    key = hashlib.sha256(
        image.tobytes() + repr((image.shape, seconds, size, fps, with_audio)).encode()
    ).hexdigest()[:16]
    path = folder / f"still-{key}.mp4"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    source = Image.fromarray(image)
    frame_count = round(seconds * fps)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=48_000) if with_audio else None
        if audio is not None:
            audio.layout = "mono"
        for index in range(frame_count):
            progress = index / max(1, frame_count - 1)
            # Zoom from the whole image to 85% of it, drifting right: a gentle camera move.
            scale = 1.0 - 0.15 * progress
            crop_width, crop_height = source.width * scale, source.height * scale
            left = (source.width - crop_width) * progress
            top = (source.height - crop_height) * 0.5
            frame_image = source.resize(
                (width, height), box=(left, top, left + crop_width, top + crop_height)
            )
            frame = av.VideoFrame.from_ndarray(np.asarray(frame_image), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            samples = np.zeros((1, int(seconds * 48_000)), dtype=np.float32)
            sound = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            sound.sample_rate = 48_000
            container.mux(audio.encode(sound))
            container.mux(audio.encode())
    partial.replace(path)
    return path
