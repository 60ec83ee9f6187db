"""The production face engine: insightface's SCRFD detector and ArcFace recognizer (ONNX).

The weights come from a folder that ops provide (`FACE_MODEL_DIR`, for example the two models
of insightface's `buffalo_l` pack); nothing here downloads. insightface's `FaceAnalysis` would
fetch a pack it cannot find, so it is not used: each .onnx file is classified with the same rule
as insightface's `model_zoo.ModelRouter`, then loaded by `model_zoo.get_model` from its local
path (a path ending in .onnx, no `download` argument: the code path that never downloads).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from django.core.exceptions import ImproperlyConfigured

from cameos.faces.base import (
    DetectedFace,
    FaceEmbedding,
    FaceEngine,
    Metric,
    require_rgb_image,
)

MODEL_FOLDER_CONTENTS = (
    "it must contain exactly one SCRFD face detection model with landmarks and exactly one "
    "ArcFace recognition model, as .onnx files: for example det_10g.onnx and w600k_r50.onnx "
    "from insightface's buffalo_l pack (its other models, such as landmark and gender/age "
    "models, may stay and are ignored)"
)
# SCRFD's usual square input; images are letterboxed into it, so faces down to ~20 px at this
# scale are found.
DETECTION_INPUT_SIZE = (640, 640)
DETECTION_THRESHOLD = 0.5


class ModelKind(StrEnum):
    DETECTION = "detection"
    RECOGNITION = "recognition"
    OTHER = "other"


@dataclass(frozen=True)
class ModelFolder:
    detection: Path
    recognition: Path


def classify_model(path: Path) -> ModelKind:
    """What insightface's ModelRouter would load `path` as, read from the graph alone.

    The router decides from an inference session's inputs and outputs; reading the same facts
    from the graph avoids building sessions for the pack's models that are not used.
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise ImproperlyConfigured(
            f"face model {path} (in FACE_MODEL_DIR) is not a readable ONNX model: {error}"
        ) from error
    graph = model.graph
    if not graph.node:
        raise ImproperlyConfigured(
            f"face model {path} (in FACE_MODEL_DIR) is empty or not an ONNX model"
        )
    if len(graph.output) >= 5:
        return ModelKind.DETECTION
    # Models exported with old ONNX versions also list their weights as graph inputs.
    weights = {initializer.name for initializer in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    if not inputs:
        return ModelKind.OTHER
    dimensions = [dimension.dim_value for dimension in inputs[0].type.tensor_type.shape.dim]
    if len(dimensions) != 4:
        return ModelKind.OTHER
    height, width = dimensions[2], dimensions[3]
    if (height, width) in ((192, 192), (96, 96)):
        return ModelKind.OTHER  # landmark and attribute (gender/age) models
    if len(inputs) == 2 and (height, width) == (128, 128):
        return ModelKind.OTHER  # the face swapper
    if height == width and height >= 112 and height % 16 == 0:
        return ModelKind.RECOGNITION
    return ModelKind.OTHER


def find_models(model_dir: str | Path) -> ModelFolder:
    """The detection and recognition models in `model_dir`; ImproperlyConfigured if unusable."""
    if not str(model_dir).strip():
        raise ImproperlyConfigured(
            "FACE_ENGINE=insightface needs FACE_MODEL_DIR, the folder of its ONNX models; "
            f"{MODEL_FOLDER_CONTENTS}"
        )
    folder = Path(model_dir).expanduser()
    if not folder.exists():
        raise ImproperlyConfigured(
            f"FACE_MODEL_DIR={folder} does not exist; {MODEL_FOLDER_CONTENTS}"
        )
    if not folder.is_dir():
        raise ImproperlyConfigured(
            f"FACE_MODEL_DIR={folder} is not a folder; {MODEL_FOLDER_CONTENTS}"
        )
    paths = sorted(path for path in folder.glob("*.onnx") if path.is_file())
    if not paths:
        raise ImproperlyConfigured(
            f"FACE_MODEL_DIR={folder} has no .onnx files; {MODEL_FOLDER_CONTENTS}"
        )
    found: dict[ModelKind, list[Path]] = {kind: [] for kind in ModelKind}
    for path in paths:
        found[classify_model(path)].append(path)
    for kind in (ModelKind.DETECTION, ModelKind.RECOGNITION):
        if len(found[kind]) != 1:
            names = ", ".join(path.name for path in found[kind]) or "none"
            raise ImproperlyConfigured(
                f"FACE_MODEL_DIR={folder} has {len(found[kind])} {kind} models ({names}) among "
                f"{', '.join(path.name for path in paths)}; {MODEL_FOLDER_CONTENTS}"
            )
    return ModelFolder(
        detection=found[ModelKind.DETECTION][0], recognition=found[ModelKind.RECOGNITION][0]
    )


def execution_providers() -> list[str]:
    """CUDA when this onnxruntime build offers it, else the CPU (never CoreML or others)."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def engine_id(recognition_model: Path) -> str:
    """ "insightface-<file name>-<first 8 hex of its SHA-256>", at most 64 characters.

    The name tells people which model made a vector; the digest keeps two different files that
    happen to share a name (a retrained model, a renamed pack) from ever being compared.
    """
    digest = hashlib.sha256()
    with recognition_model.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    name = re.sub(r"[^a-z0-9]+", "-", recognition_model.stem.lower()).strip("-")[:40] or "model"
    return f"insightface-{name}-{digest.hexdigest()[:8]}"


class InsightFaceEngine(FaceEngine):
    metric = Metric.COSINE
    # Cosine distance (1 - cosine similarity, pgvector's `<=>`). NOT calibrated on this project's
    # machines (the weights are not redistributable, so CI has none): a prior from ArcFace's
    # published behaviour, where similarity >= ~0.3 already holds FMR near 1e-4 on IJB-C. Match
    # at similarity >= 0.40, review down to 0.28. Replace both with the figures of
    # `python -m cameos.faces.calibration --engine insightface --model-dir ...` plus real data.
    match_threshold = 0.60
    uncertain_threshold = 0.72
    search_uncertain_threshold = 0.66  # as uncalibrated as the two above

    def __init__(self, model_dir: str | Path) -> None:
        """Load the folder's SCRFD and ArcFace models (a few seconds); once per process."""
        folder = find_models(model_dir)
        from insightface.model_zoo import SCRFD, ArcFaceONNX

        providers = execution_providers()
        self._detector = _load(folder.detection, providers, SCRFD)
        if not self._detector.use_kps:
            raise ImproperlyConfigured(
                f"face detection model {folder.detection} gives no landmarks, which alignment "
                f"needs; {MODEL_FOLDER_CONTENTS}"
            )
        # A context id >= 0 keeps the providers chosen above; one input size, not the
        # multi-scale default of insightface 2.x.
        self._detector.prepare(0, input_size=DETECTION_INPUT_SIZE, det_thresh=DETECTION_THRESHOLD)
        self._recognizer = _load(folder.recognition, providers, ArcFaceONNX)
        self._crop_size = int(self._recognizer.input_size[0])
        self._template = _alignment_template(self._crop_size)
        self.id = engine_id(folder.recognition)
        self.dimension = self._output_dimension()
        self.model_folder = folder

    def detect(self, image: np.ndarray, *, min_face_size: int | None = None) -> list[DetectedFace]:
        """Faces of any pose SCRFD finds (score >= 0.5); scores are probabilities. SCRFD's
        smallest anchors (16 px at its input size) already find small faces: `min_face_size`
        changes nothing."""
        bgr = np.ascontiguousarray(require_rgb_image(image)[:, :, ::-1])
        detections, keypoints = self._detector.detect(bgr)
        faces = []
        for row, points in zip(detections, keypoints, strict=True):
            landmarks = np.asarray(points, dtype=np.float64).reshape(5, 2)
            landmarks.flags.writeable = False
            faces.append(
                DetectedFace(
                    box=(float(row[0]), float(row[1]), float(row[2]), float(row[3])),
                    landmarks=landmarks,
                    score=float(row[4]),
                    eye_left=(float(landmarks[0, 0]), float(landmarks[0, 1])),
                    eye_right=(float(landmarks[1, 0]), float(landmarks[1, 1])),
                    nose=(float(landmarks[2, 0]), float(landmarks[2, 1])),
                )
            )
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces

    def embed(self, image: np.ndarray, face: DetectedFace) -> FaceEmbedding:
        """The unit-length ArcFace vector of `face`, found by this engine's `detect` on `image`.

        The five landmarks must be SCRFD's (eyes, nose, mouth corners); another engine's points
        would misalign the crop.
        """
        from skimage.transform import SimilarityTransform

        bgr = np.ascontiguousarray(require_rgb_image(image)[:, :, ::-1])
        transform = SimilarityTransform.from_estimate(
            np.asarray(face.landmarks, dtype=np.float64), self._template
        )
        if not transform:
            raise ValueError(f"cannot align a face from degenerate landmarks {face.landmarks}")
        aligned = cv2.warpAffine(
            bgr, transform.params[:2], (self._crop_size, self._crop_size), borderValue=0.0
        )
        vector = np.asarray(self._recognizer.get_feat(aligned), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector = vector / norm
        return FaceEmbedding(vector=vector, engine=self.id, dimension=int(vector.size))

    def _output_dimension(self) -> int:
        shape = self._recognizer.output_shape
        if isinstance(shape[-1], int) and shape[-1] > 0:
            return int(shape[-1])
        # A symbolic output size: run one blank crop to learn it.
        blank = np.zeros((self._crop_size, self._crop_size, 3), dtype=np.uint8)
        return int(np.asarray(self._recognizer.get_feat(blank)).reshape(-1).size)


def _load(path: Path, providers: list[str], expected: type) -> Any:
    from insightface.model_zoo import get_model

    try:
        model = get_model(str(path), providers=providers)
    except Exception as error:
        raise ImproperlyConfigured(
            f"face model {path} (in FACE_MODEL_DIR) failed to load: {error}"
        ) from error
    if not isinstance(model, expected):
        raise ImproperlyConfigured(
            f"face model {path} loads as {type(model).__name__}, not {expected.__name__}; "
            f"{MODEL_FOLDER_CONTENTS}"
        )
    return model


def _alignment_template(crop_size: int) -> np.ndarray:
    """ArcFace's five reference points for a crop of this size.

    The scaling of insightface.utils.face_align.estimate_norm, which cannot be called itself: its
    skimage call is deprecated and warns on every face. The template's order is SCRFD's: eye on
    the image's left, eye on its right, nose tip, mouth left, mouth right.
    """
    from insightface.utils.face_align import arcface_dst

    template = np.asarray(arcface_dst, dtype=np.float64)
    if crop_size % 112 == 0:
        return template * (crop_size / 112.0)
    if crop_size % 128 == 0:
        ratio = crop_size / 128.0
        return template * ratio + np.array([8.0 * ratio, 0.0])
    raise ImproperlyConfigured(
        f"ArcFace input size {crop_size} is neither a multiple of 112 nor of 128"
    )
