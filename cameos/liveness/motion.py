"""Head motion in a registration recording: the requested turns, and flat-picture detection.

Turns come from the face engine's five landmarks: the nose's offset from the eyes' midpoint,
measured along the eye line and divided by the eye distance, relative to the clip's first
frames. A turn to the person's own left moves the nose towards the image's right edge in an
unmirrored recording, so the value grows; a mirrored upload flips the sign.

The flat-picture check tracks many corners inside the face (Lucas-Kanade, checked forwards and
backwards) across pairs of frames a fraction of a second apart and compares two fits of each
pair's motion: a homography (8 degrees of freedom: exactly what any motion of a flat picture
produces, however it is shifted, scaled, rotated or tilted) and a similarity (4: shift, scale,
in-plane rotation). When a pair moves more than a similarity explains, a plane is still fitted
by the homography, while a turning head is not (the nose, cheeks and ears move by different
amounts: parallax), so the homography leaves most of the error in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cameos.faces.base import DetectedFace

LEFT = "left"
RIGHT = "right"
TURN_DIRECTIONS = (LEFT, RIGHT)

# The first samples with a face (about half a second at 8 fps) define facing the camera.
BASELINE_SAMPLES = 4
# A turn is counted when the yaw proxy moves this far from the baseline, and it ends when it
# comes back within TURN_RETURN. On the synthetic 3D head (tests/cameos/recordings.py: an
# ellipsoid with a nose ~0.45 eye distances high) the proxy peaks at 0.08-0.09 at 15 degrees,
# 0.12 at 20, 0.14-0.15 at 25, 0.15-0.25 at 35 (one or two samples at the peak; find_turns
# smooths over three): a turn of 25 degrees counts reliably, 20 is borderline. A flat photo
# tilted by 30 degrees about its vertical axis at selfie distance peaks at 0.06, by 45 degrees
# at 0.11 (and is refused as flat). Not yet measured on real recordings.
TURN_THRESHOLD = 0.10
TURN_RETURN = 0.05

# Still picture: the landmarks never move more than this (in eye distances) from where they
# usually are. A live person holding a phone moves several times more (the synthetic head's
# sway alone is ~0.1).
STILL_MOVEMENT = 0.02

# Corner tracking inside the face box, in the detection-resolution frames.
MAX_CORNERS = 300
CORNER_QUALITY = 0.005
LK_WINDOW = (15, 15)
LK_LEVELS = 2
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
FORWARD_BACKWARD_LIMIT = 0.5  # pixels
MIN_TRACKED_POINTS = 20
# Pairs start every ANCHOR_STEP samples and span 2, 4 and 6 samples (0.25-0.75 s at 8 fps).
# Anchors every 3rd sample and a 2-level pyramid cost 40% less than every 2nd and 3 levels,
# with the same separation on the synthetic clips.
ANCHOR_STEP = 3
PAIR_SPANS = (2, 4, 6)
RANSAC_THRESHOLD = 0.01  # of the face width
RESIDUAL_PERCENTILE = 90
# A pair counts when a similarity leaves this much error (90th percentile, in face widths):
# the picture did more than shift, scale or roll. Real heads that do not turn, and photos that
# are only slid, scaled and rolled, stay below ~0.019 on the synthetic clips.
MIN_NON_SIMILAR_MOTION = 0.025
# Homography error over similarity error, median over the counted pairs. Measured on the
# synthetic clips (tests/cameos/recordings.py): a turning 3D head 0.90-1.04 (15-35 degree
# turns; 640x360, 360x640 and 1280x720; 3, 4 and 5 s; with a second person), a flat photo
# slid, rolled and tilted by 30-45 degrees 0.24-0.34. Tilted by 15 degrees or less, or only slid,
# scaled and rolled, a photo moves like a similarity and no pair counts: undecided (such a
# clip fails the turn check instead).
FLAT_RATIO = 0.5
MIN_COUNTED_PAIRS = 3


def yaw_proxy(face: DetectedFace) -> float:
    """Nose offset from the eyes' midpoint along the eye line, in eye distances (image x sign)."""
    eye_left = np.array(face.eye_left)
    eye_right = np.array(face.eye_right)
    eye_line = eye_right - eye_left
    eye_distance = float(np.linalg.norm(eye_line))
    if eye_distance < 1e-6:
        return math.nan
    offset = np.array(face.nose) - (eye_left + eye_right) / 2
    return float(offset @ eye_line) / (eye_distance * eye_distance)


def yaw_series(faces: Sequence[DetectedFace | None], *, mirrored: bool) -> np.ndarray:
    """Each sample's yaw proxy relative to the first samples; positive is the person's left.

    NaN where there is no face. The first BASELINE_SAMPLES faces are assumed to face the
    camera, as the user is asked to.
    """
    raw = np.array([yaw_proxy(face) if face is not None else math.nan for face in faces])
    present = np.flatnonzero(~np.isnan(raw))
    if present.size == 0:
        return raw
    baseline = float(np.median(raw[present[:BASELINE_SAMPLES]]))
    relative = raw - baseline
    return -relative if mirrored else relative


@dataclass(frozen=True)
class Turn:
    direction: str
    start_index: int  # sample where the proxy first passed TURN_THRESHOLD
    peak_index: int
    peak: float  # signed proxy at the peak


def find_turns(yaw: np.ndarray) -> list[Turn]:
    """The turns in a relative yaw series, in order.

    A turn starts when the (3-sample median-smoothed) proxy passes TURN_THRESHOLD on one side
    and ends when it comes back within TURN_RETURN or passes the threshold on the other side.
    Samples without a face are skipped: a detector can lose a face turned far away.
    """
    present = np.flatnonzero(~np.isnan(yaw))
    values = yaw[present]
    if values.size >= 3:
        padded = np.concatenate([values[:1], values, values[-1:]])
        values = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    turns: list[Turn] = []
    side = 0
    for position, value in zip(present, values, strict=True):
        index = int(position)
        if abs(value) >= TURN_THRESHOLD and np.sign(value) != side:
            side = int(np.sign(value))
            turns.append(Turn(LEFT if side > 0 else RIGHT, index, index, float(value)))
        elif side and abs(value) < TURN_RETURN:
            side = 0
        elif side and np.sign(value) == side and abs(value) > abs(turns[-1].peak):
            last = turns[-1]
            turns[-1] = Turn(last.direction, last.start_index, index, float(value))
    return turns


@dataclass(frozen=True)
class TurnCheck:
    seen: tuple[str, ...]
    requested: tuple[str, ...]

    @property
    def is_match(self) -> bool:
        return self.seen == self.requested

    @property
    def missing(self) -> tuple[str, ...]:
        """Requested directions that were never seen at all."""
        return tuple(
            direction
            for direction in TURN_DIRECTIONS
            if direction in self.requested and direction not in self.seen
        )


def check_turns(turns: Sequence[Turn], requested: Sequence[str]) -> TurnCheck:
    """The turns seen against the request: exactly the requested sequence passes."""
    for direction in requested:
        if direction not in TURN_DIRECTIONS:
            raise ValueError(f"a turn is 'left' or 'right', got {direction!r}")
    return TurnCheck(seen=tuple(turn.direction for turn in turns), requested=tuple(requested))


def is_still(faces: Sequence[DetectedFace | None]) -> bool:
    """Whether the face's landmarks stay put over the whole clip, as on a photo on a stand.

    Needs at least a few faces; with fewer it answers False (the other checks fail anyway).
    """
    present = [face for face in faces if face is not None]
    if len(present) < BASELINE_SAMPLES:
        return False
    points = np.stack([np.array([face.eye_left, face.eye_right, face.nose]) for face in present])
    eye_distance = float(np.median(np.linalg.norm(points[:, 1] - points[:, 0], axis=1)))
    if eye_distance < 1e-6:
        return False
    movement = np.linalg.norm(points - np.median(points, axis=0), axis=2).max(axis=1)
    return float(np.percentile(movement, 95)) / eye_distance < STILL_MOVEMENT


@dataclass(frozen=True)
class PairFit:
    first: int
    second: int
    points: int
    homography_error: float  # 90th percentile, in face widths
    similarity_error: float

    @property
    def ratio(self) -> float:
        return self.homography_error / max(self.similarity_error, 1e-9)


@dataclass(frozen=True)
class Planarity:
    pairs: tuple[PairFit, ...]  # every pair measured
    counted: tuple[PairFit, ...]  # those with more motion than a similarity explains
    median_ratio: float | None

    @property
    def is_flat(self) -> bool | None:
        """True: the face moved like a picture; False: like a 3D head; None: cannot tell."""
        if self.median_ratio is None or len(self.counted) < MIN_COUNTED_PAIRS:
            return None
        return self.median_ratio < FLAT_RATIO


def measure_planarity(
    grays: Sequence[np.ndarray], boxes: Sequence[tuple[float, float, float, float] | None]
) -> Planarity:
    """How well one homography explains the face's motion between frames.

    `grays` are the sampled frames as uint8 greyscale, `boxes` the tracked face's box in the
    same coordinates (None where it was not found).
    """
    pairs: list[PairFit] = []
    for anchor in range(0, len(grays) - 1, ANCHOR_STEP):
        box = boxes[anchor]
        if box is None:
            continue
        pairs.extend(_track_from(anchor, grays, box))
    counted = tuple(pair for pair in pairs if pair.similarity_error >= MIN_NON_SIMILAR_MOTION)
    median = float(np.median([pair.ratio for pair in counted])) if counted else None
    return Planarity(pairs=tuple(pairs), counted=counted, median_ratio=median)


def _track_from(
    anchor: int, grays: Sequence[np.ndarray], box: tuple[float, float, float, float]
) -> list[PairFit]:
    left, top, right, bottom = box
    width = right - left
    image = grays[anchor]
    mask = np.zeros_like(image)
    # The face without its edges: the background and the hair outline move differently from
    # the face even when it is flat.
    inset = 0.12 * width
    y0, y1 = max(0, round(top)), min(image.shape[0], round(bottom))
    x0, x1 = max(0, round(left + inset)), min(image.shape[1], round(right - inset))
    if y1 - y0 < 8 or x1 - x0 < 8:
        return []
    mask[y0:y1, x0:x1] = 255
    corners = cv2.goodFeaturesToTrack(
        image, MAX_CORNERS, CORNER_QUALITY, max(2.0, width / 40), mask=mask
    )
    if corners is None or len(corners) < MIN_TRACKED_POINTS:
        return []
    start = corners.astype(np.float32)
    current = start.copy()
    alive = np.ones(len(start), dtype=bool)
    fits = []
    for step in range(1, max(PAIR_SPANS) + 1):
        target = anchor + step
        if target >= len(grays):
            break
        current, tracked = _track(grays[target - 1], grays[target], current)
        alive &= tracked
        if alive.sum() < MIN_TRACKED_POINTS:
            break
        if step in PAIR_SPANS:
            fit = _fit_pair(start[alive].reshape(-1, 2), current[alive].reshape(-1, 2), width)
            if fit is not None:
                fits.append(PairFit(anchor, target, int(alive.sum()), *fit))
    return fits


def _track(
    previous: np.ndarray, following: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # The guess is only read with OPTFLOW_USE_INITIAL_FLOW; here it is an output buffer.
    moved, status, _ = cv2.calcOpticalFlowPyrLK(
        previous,
        following,
        points,
        points.copy(),
        winSize=LK_WINDOW,
        maxLevel=LK_LEVELS,
        criteria=LK_CRITERIA,
    )
    back, back_status, _ = cv2.calcOpticalFlowPyrLK(
        following,
        previous,
        moved,
        points.copy(),
        winSize=LK_WINDOW,
        maxLevel=LK_LEVELS,
        criteria=LK_CRITERIA,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )
    round_trip = np.linalg.norm(back - points, axis=2).reshape(-1)
    tracked = (
        (status.reshape(-1) == 1)
        & (back_status.reshape(-1) == 1)
        & (round_trip < FORWARD_BACKWARD_LIMIT)
    )
    return moved, tracked


def _fit_pair(
    source: np.ndarray, target: np.ndarray, face_width: float
) -> tuple[float, float] | None:
    homography, _ = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_THRESHOLD * face_width)
    similarity, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
    if homography is None or similarity is None:
        return None
    projected = cv2.perspectiveTransform(source[None].astype(np.float64), homography)[0]
    homography_error = np.linalg.norm(projected - target, axis=1) / face_width
    moved = source @ similarity[:, :2].T + similarity[:, 2]
    similarity_error = np.linalg.norm(moved - target, axis=1) / face_width
    return (
        float(np.percentile(homography_error, RESIDUAL_PERCENTILE)),
        float(np.percentile(similarity_error, RESIDUAL_PERCENTILE)),
    )
