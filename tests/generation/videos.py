"""Helpers for the /v1/videos tests: SDK clients, media inspection and storage listings."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from django.conf import settings
from openai import OpenAI


def sdk(stack_url: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{stack_url}/v1", api_key=key, max_retries=0, timeout=60)


def probe_mp4(data: bytes) -> dict[str, object]:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video=0))
        rate = Fraction(video.guessed_rate or video.average_rate or 0)
    with av.open(io.BytesIO(data)) as container:
        samples = np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        )
    duration = Fraction(frames) / rate
    return {
        "video_codec": video.codec_context.name,
        "audio_codec": audio.codec_context.name,
        "width": video.codec_context.width,
        "height": video.codec_context.height,
        "frames": frames,
        "duration": float(duration),
        "audio_rms": float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))),
    }


def stored_files(job_id: str) -> list[str]:
    """Every file the media storage holds for one job, as paths relative to MEDIA_ROOT."""
    root = Path(settings.MEDIA_ROOT)
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and job_id in str(path)
    )
