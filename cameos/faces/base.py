"""The face engine interface: detect, embed, compare. Used by cameos and by moderation.

An engine is loaded once per process (`cameos.faces.get_engine`). Every embedding carries the
id of the engine that made it and its dimension, so vectors of different engines are never
compared or searched together.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

Point = tuple[float, float]


class Metric(StrEnum):
    """How an engine's vectors are compared (and which pgvector operator searches them)."""

    EUCLIDEAN = "l2"  # pgvector `<->`, vector_l2_ops
    COSINE = "cosine"  # pgvector `<=>`, vector_cosine_ops


@dataclass(frozen=True)
class DetectedFace:
    """One face in one image, in that image's pixel coordinates (x right, y down)."""

    box: tuple[float, float, float, float]  # left, top, right, bottom
    # The five points exactly as the engine's landmark model gives them, shape (5, 2).
    landmarks: np.ndarray = field(repr=False)
    score: float
    # Derived from `landmarks` by the engine, whatever its point order: the eye centre on the
    # image's left, the one on the image's right, and the nose tip (or the bottom of the nose).
    eye_left: Point
    eye_right: Point
    nose: Point

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class FaceEmbedding:
    vector: np.ndarray = field(repr=False)  # float32, shape (dimension,)
    engine: str
    dimension: int


@dataclass(frozen=True)
class Match:
    distance: float
    is_match: bool


def require_rgb_image(image: np.ndarray) -> np.ndarray:
    """`image` as a C-contiguous RGB uint8 (height, width, 3) array; ValueError otherwise.

    Every engine checks its input here. dlib reads a strided view (a flipped or sliced array)
    as if it were contiguous and silently finds nothing, hence the copy of such views.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an RGB uint8 (height, width, 3) image, got {image.dtype} {image.shape}"
        )
    return np.ascontiguousarray(image)


class FaceEngine(abc.ABC):
    """Detect faces, embed them, compare embeddings of this engine."""

    id: str  # stored with every embedding, e.g. "dlib-resnet-v1"
    dimension: int
    metric: Metric
    # Same person at or below this distance; calibrated per engine (see cameos/faces/README).
    match_threshold: float
    # Between match_threshold and this, a comparison is uncertain (review, not a decision).
    uncertain_threshold: float
    # The same, for a 1:N search over every enrolled face: with N faces to come near, a stranger
    # falls inside a 1:1 band N times as often, so the band for "maybe an enrolled person,
    # untagged" must be narrower (it holds a video and asks a person to decide).
    search_uncertain_threshold: float

    @abc.abstractmethod
    def detect(self, image: np.ndarray, *, min_face_size: int | None = None) -> list[DetectedFace]:
        """Faces in an RGB uint8 (height, width, 3) image, best score first.

        `min_face_size` (pixels of `image`) asks for faces at least that small to be found, at
        the engine's extra cost (the output check wants small background faces too)."""

    @abc.abstractmethod
    def embed(self, image: np.ndarray, face: DetectedFace) -> FaceEmbedding:
        """The identity vector of `face`, found by `detect` on this same `image`."""

    def distance(self, first: FaceEmbedding, second: FaceEmbedding) -> float:
        if first.engine != self.id or second.engine != self.id:
            raise ValueError(
                f"cannot compare embeddings of {first.engine!r} and {second.engine!r} "
                f"with engine {self.id!r}"
            )
        a = first.vector.astype(np.float64)
        b = second.vector.astype(np.float64)
        if self.metric is Metric.EUCLIDEAN:
            return float(np.linalg.norm(a - b))
        return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    def compare(self, first: FaceEmbedding, second: FaceEmbedding) -> Match:
        distance = self.distance(first, second)
        return Match(distance=distance, is_match=distance <= self.match_threshold)
