"""The interface every video backend implements.

A backend turns a `RenderRequest` into a `RenderedClip`: a stream of RGB frames plus a mono
audio track. Encoding (MP4, thumbnail, spritesheet) is shared and lives in
`generation.media.encode`, so a backend never touches containers or codecs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ProgressCallback = Callable[[int], None]
"""Receives a percentage 0-100 of the render; may raise to abort (lease lost, cancelled)."""


@dataclass(frozen=True)
class CameoReference:
    """A cameo tagged in the prompt, as the render needs it (decrypted into the work folder)."""

    handle: str  # as tagged, without the '@'
    kind: str  # "person" or "character"
    display_name: str
    # Person: a few reference face crops (RGB PNG). Character: stills from its clip.
    images: tuple[Path, ...]
    # Person: the face embeddings of those crops, from `embedding_engine`; character: none.
    embeddings: tuple[np.ndarray, ...] = ()
    embedding_engine: str = ""
    # The owner's appearance preferences in plain words ("always wearing my red cap").
    preferences: str = ""


@dataclass(frozen=True)
class RenderRequest:
    prompt: str
    seconds: int
    width: int
    height: int
    seed: int
    # image-to-video: a local image file already validated by the API (decodable, bounded size).
    input_reference: Path | None = None
    # video-to-video (remix): a local MP4 of the source video.
    source_video: Path | None = None
    # The cameos tagged in the prompt, in the order they were tagged (at most 3).
    cameos: tuple[CameoReference, ...] = ()


@dataclass
class RenderedClip:
    fps: int
    frame_count: int
    # Each frame is a (height, width, 3) uint8 RGB array; produced lazily so that a 12 s clip
    # at 1792x1024 never sits in memory whole.
    frames: Iterator[np.ndarray]
    # float32 mono samples in [-1, 1], exactly frame_count / fps seconds long.
    audio: np.ndarray
    sample_rate: int


class VideoBackend(abc.ABC):
    """Loaded once per worker process (see `generation.backends.get_backend`)."""

    name: str

    @abc.abstractmethod
    def render(self, request: RenderRequest) -> RenderedClip:
        """Return the clip; heavy work may happen lazily while `frames` is consumed."""
