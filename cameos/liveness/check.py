"""The liveness check of a cameo registration recording: every check, every failure.

The user was given a challenge (three random digits to say one at a time, and a sequence of
head turns) and recorded 3-10 s of video with sound. `check_liveness` runs every check and
collects every failure rather than stopping at the first, so the user learns everything to fix
in one go. On success it returns a few reference face crops with their embeddings; on failure
nothing biometric is kept.

Cost: the frames are sampled at 8 fps, faces are detected at 640 px on the long side, and only
four near-frontal frames are embedded. A 5 s 720p 30 fps recording takes ~2.5 s on the shared
two-core machine (benchmarks/bench_liveness.py; half of it face detection), plus ~0.6 s to load
the models once per process; ~140 MB of memory beyond the models.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO

import cv2
import numpy as np

from cameos.faces.base import DetectedFace, FaceEmbedding, FaceEngine
from cameos.liveness import motion, speech
from cameos.liveness.container import (
    DEFAULT_LIMITS,
    ContainerLimits,
    DecodedRecording,
    RecordingRefused,
    open_recording,
)

ProgressCallback = Callable[[int, str], None]
Box = tuple[float, float, float, float]


class FailureCode(StrEnum):
    NO_FACE = "no_face"
    SECOND_PERSON = "second_person"
    IDENTITY_CHANGED = "identity_changed"
    TURN_MISSING = "turn_missing"
    TURNS_OUT_OF_ORDER = "turns_out_of_order"
    DIGITS_MISMATCH = "digits_mismatch"
    FLAT_PICTURE = "flat_picture"
    STILL_PICTURE = "still_picture"


# Faces are searched for in frames shrunk to this long side: a selfie's face is far above the
# detectors' minimum (~80 px for dlib's HOG) at this size, and it costs a third of 960 px.
DETECTION_MAX_SIDE = 640
# A face must be found in at least this share of the sampled frames. Detectors can lose a
# face turned far away for a few frames, so not all of them.
MIN_FACE_SHARE = 0.6
# Another face at least this wide relative to the user's, in this share of the frames with the
# user's face, is a second person (a face on a poster far behind is smaller).
SECOND_FACE_MIN_WIDTH = 0.35
SECOND_FACE_MIN_SHARE = 0.2
# The tracked face may move this far (in its own widths) between consecutive samples.
TRACK_MAX_JUMP = 0.6
# Identity: embed this many near-frontal frames spread over the clip (one per equal slice).
IDENTITY_FRAMES = 4
REFERENCE_SIZE = 256
# The reference crop is this many face-box widths wide: the whole head with a little margin.
REFERENCE_MARGIN = 1.8


@dataclass(frozen=True)
class LivenessFailure:
    code: str  # a FailureCode, or a container RefusalCode when the upload was refused
    message: str  # shown to the user


@dataclass(frozen=True)
class ReferenceFace:
    image: np.ndarray = field(repr=False)  # RGB uint8 (REFERENCE_SIZE, REFERENCE_SIZE, 3)
    embedding: FaceEmbedding
    time: float  # seconds into the recording


@dataclass(frozen=True)
class LivenessResult:
    failures: tuple[LivenessFailure, ...]
    # Only when every check passed: crops of near-frontal faces with their embeddings.
    references: tuple[ReferenceFace, ...]
    engine_id: str
    digits_heard: str | None  # None when the recording could not be opened
    turns_seen: tuple[str, ...]
    # Wall seconds per stage, for the benchmark and logs.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def is_live(self) -> bool:
        return not self.failures

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(failure.code for failure in self.failures)


@dataclass(frozen=True)
class _Faces:
    """The detections of every sampled frame, in working-frame coordinates."""

    all: tuple[tuple[DetectedFace, ...], ...]
    tracked: tuple[DetectedFace | None, ...]  # the user's face in each frame
    scale: float  # detection-frame pixels per working-frame pixel


def check_liveness(
    path: str | os.PathLike[str] | IO[bytes],
    challenge_digits: str,
    challenge_turns: list[str],
    *,
    mirrored: bool = False,
    engine: FaceEngine | None = None,
    progress: ProgressCallback | None = None,
    limits: ContainerLimits = DEFAULT_LIMITS,
) -> LivenessResult:
    """Check an uploaded registration recording against its challenge.

    `path` is a local file (or a seekable binary file object) that has not been inspected;
    `challenge_digits` the digits the user was asked to say, `challenge_turns` the head turns
    ("left"/"right", the person's own) in order. `mirrored` says the client flipped the video
    horizontally (a selfie preview). `engine` defaults to the process-wide face engine.
    A container that cannot be accepted comes back as a single failure with its refusal code.
    """
    if not challenge_digits.isascii() or not challenge_digits.isdigit():
        raise ValueError(f"challenge_digits must be digits, got {challenge_digits!r}")
    for turn in challenge_turns:
        if turn not in motion.TURN_DIRECTIONS:
            raise ValueError(f"a turn is 'left' or 'right', got {turn!r}")
    if engine is None:
        from cameos.faces import get_engine

        engine = get_engine()
    report = progress or _ignore_progress
    timings: dict[str, float] = {}
    clock = _Clock(timings)

    report(0, "decoding")
    try:
        with clock("decode"):
            recording = open_recording(path, limits)
    except RecordingRefused as refusal:
        report(100, "done")
        return LivenessResult(
            failures=(LivenessFailure(str(refusal.code), refusal.message),),
            references=(),
            engine_id=engine.id,
            digits_heard=None,
            turns_seen=(),
            timings=timings,
        )
    if mirrored:
        # Flipped back first: turns then read as in any recording, and the reference crops
        # show the face as it is, not as the selfie preview showed it.
        recording = dataclasses.replace(
            recording,
            frames=tuple(
                dataclasses.replace(frame, image=np.ascontiguousarray(frame.image[:, ::-1]))
                for frame in recording.frames
            ),
        )
    failures: list[LivenessFailure] = []

    report(20, "speech")
    with clock("speech"):
        digits = speech.check_digits(recording.audio, recording.audio_sample_rate, challenge_digits)
    if not digits.is_match:
        failures.append(_digits_failure(digits.heard, challenge_digits))

    report(30, "faces")
    with clock("detect"):
        detection_frames = [_detection_frame(frame.image) for frame in recording.frames]
        faces = _detect_all(engine, detection_frames, recording)
    failures.extend(_presence_failures(faces))

    report(70, "motion")
    with clock("motion"):
        yaw = motion.yaw_series(faces.tracked, mirrored=False)
        turns = motion.find_turns(yaw)
        turn_check = motion.check_turns(turns, challenge_turns)
        failures.extend(_turn_failures(turn_check))
        is_still = motion.is_still(faces.tracked)
        if is_still:
            failures.append(
                LivenessFailure(
                    FailureCode.STILL_PICTURE,
                    "the face does not move at all; this looks like a photo",
                )
            )
        else:
            planarity = motion.measure_planarity(
                [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in detection_frames],
                [
                    _scale_box(face.box, faces.scale) if face is not None else None
                    for face in faces.tracked
                ],
            )
            if planarity.is_flat:
                failures.append(
                    LivenessFailure(
                        FailureCode.FLAT_PICTURE,
                        "this looks like a photo held up to the camera, not a real head",
                    )
                )

    report(80, "identity")
    references: tuple[ReferenceFace, ...] = ()
    with clock("identity"):
        candidates = _identity_frames(faces, yaw)
        embeddings = [
            engine.embed(recording.frames[index].image, face) for index, face in candidates
        ]
        if _identity_changes(engine, embeddings):
            failures.append(
                LivenessFailure(
                    FailureCode.IDENTITY_CHANGED,
                    "the face changes during the video; only one person may record",
                )
            )
        if not failures:
            references = tuple(
                ReferenceFace(
                    image=reference_crop(recording.frames[index].image, face),
                    embedding=embedding,
                    time=recording.frames[index].time,
                )
                for (index, face), embedding in zip(candidates, embeddings, strict=True)
            )
    report(100, "done")
    return LivenessResult(
        failures=tuple(failures),
        references=references,
        engine_id=engine.id,
        digits_heard=digits.heard,
        turns_seen=turn_check.seen,
        timings=timings,
    )


def _ignore_progress(_percent: int, _stage: str) -> None:
    return None


class _Clock:
    """`with clock("stage"):` adds the block's wall time to timings["stage"]."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.stage = ""
        self.started = 0.0

    def __call__(self, stage: str) -> _Clock:
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        elapsed = time.perf_counter() - self.started
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + elapsed


def _digits_failure(heard: str, challenge: str) -> LivenessFailure:
    spoken = " ".join(heard) if heard else "no digits"
    return LivenessFailure(
        FailureCode.DIGITS_MISMATCH,
        f"we heard {spoken}, the challenge was {' '.join(challenge)}",
    )


def _detection_frame(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = DETECTION_MAX_SIDE / max(height, width)
    if scale >= 1.0:
        return image
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _detect_all(
    engine: FaceEngine, detection_frames: Sequence[np.ndarray], recording: DecodedRecording
) -> _Faces:
    scale = 1.0
    if recording.frames:
        scale = detection_frames[0].shape[1] / recording.frames[0].image.shape[1]
    detected = tuple(
        tuple(_scale_face(face, 1 / scale) for face in engine.detect(frame))
        for frame in detection_frames
    )
    return _Faces(all=detected, tracked=_track_user(detected, recording), scale=scale)


def _track_user(
    detected: Sequence[Sequence[DetectedFace]], recording: DecodedRecording
) -> tuple[DetectedFace | None, ...]:
    """The user's face in each frame: the largest, most central face, then followed.

    Best-score-first order is not enough once two people are in the frame: their scores
    alternate, and the turns of one would mix with the other's.
    """
    tracked: list[DetectedFace | None] = []
    previous: DetectedFace | None = None
    for faces, frame in zip(detected, recording.frames, strict=True):
        if not faces:
            tracked.append(None)
            continue
        if previous is None:
            height, width = frame.image.shape[:2]
            chosen = max(faces, key=lambda face: _prominence(face, width, height))
        else:
            last = previous
            chosen = min(faces, key=lambda face: _centre_distance(face, last))
            if _centre_distance(chosen, last) > TRACK_MAX_JUMP * last.width:
                tracked.append(None)
                continue
        tracked.append(chosen)
        previous = chosen
    return tuple(tracked)


def _prominence(face: DetectedFace, width: int, height: int) -> float:
    centre_x = (face.box[0] + face.box[2]) / 2 / width - 0.5
    centre_y = (face.box[1] + face.box[3]) / 2 / height - 0.5
    return face.width * face.height * (1.0 - math.hypot(centre_x, centre_y))


def _centre_distance(first: DetectedFace, second: DetectedFace) -> float:
    return math.hypot(
        (first.box[0] + first.box[2] - second.box[0] - second.box[2]) / 2,
        (first.box[1] + first.box[3] - second.box[1] - second.box[3]) / 2,
    )


def _presence_failures(faces: _Faces) -> list[LivenessFailure]:
    failures = []
    frames = len(faces.tracked)
    with_face = sum(face is not None for face in faces.tracked)
    if frames == 0 or with_face < MIN_FACE_SHARE * frames:
        failures.append(
            LivenessFailure(
                FailureCode.NO_FACE,
                f"no face was found in most of the video (in {with_face} of {frames} frames)",
            )
        )
    with_second = sum(
        1
        for user, everyone in zip(faces.tracked, faces.all, strict=True)
        if user is not None
        and any(
            other is not user and other.width >= SECOND_FACE_MIN_WIDTH * user.width
            for other in everyone
        )
    )
    if with_face and with_second >= SECOND_FACE_MIN_SHARE * with_face:
        failures.append(
            LivenessFailure(
                FailureCode.SECOND_PERSON,
                "a second person is in the frame; record alone",
            )
        )
    return failures


def _turn_failures(check: motion.TurnCheck) -> list[LivenessFailure]:
    if check.is_match:
        return []
    if check.missing:
        return [
            LivenessFailure(
                FailureCode.TURN_MISSING,
                f"the head did not turn {' or '.join(check.missing)}",
            )
        ]
    seen = ", ".join(check.seen)
    return [
        LivenessFailure(
            FailureCode.TURNS_OUT_OF_ORDER,
            f"the head turned {seen}; the challenge was {', '.join(check.requested)}",
        )
    ]


def _identity_frames(faces: _Faces, yaw: np.ndarray) -> list[tuple[int, DetectedFace]]:
    """Up to IDENTITY_FRAMES samples, one per equal slice of the clip: the most frontal face.

    Embeddings of turned faces drift (~0.4 at 35 degrees for dlib), so the comparison uses the
    most frontal face of each slice; the slices make a face swapped mid-clip show up.
    """
    present = [(index, face) for index, face in enumerate(faces.tracked) if face is not None]
    slices = min(IDENTITY_FRAMES, len(present))
    chosen = []
    for part in range(slices):
        members = present[part * len(present) // slices : (part + 1) * len(present) // slices]
        chosen.append(min(members, key=lambda member: _frontality(yaw[member[0]])))
    return chosen


def _frontality(yaw: float) -> float:
    return abs(yaw) if not math.isnan(yaw) else math.inf


def _identity_changes(engine: FaceEngine, embeddings: Sequence[FaceEmbedding]) -> bool:
    return any(
        engine.distance(first, second) > engine.match_threshold
        for first, second in itertools.combinations(embeddings, 2)
    )


def reference_crop(image: np.ndarray, face: DetectedFace) -> np.ndarray:
    """A square crop centred on the face, REFERENCE_MARGIN box widths wide, resized."""
    left, top, right, bottom = face.box
    side = REFERENCE_MARGIN * max(right - left, bottom - top)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    # Affine resampling fills outside the frame with black instead of failing at the edges.
    scale = REFERENCE_SIZE / side
    transform = np.array(
        [
            [scale, 0, REFERENCE_SIZE / 2 - scale * centre_x],
            [0, scale, REFERENCE_SIZE / 2 - scale * centre_y],
        ],
        dtype=np.float64,
    )
    return cv2.warpAffine(
        image,
        transform,
        (REFERENCE_SIZE, REFERENCE_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def _scale_face(face: DetectedFace, factor: float) -> DetectedFace:
    if factor == 1.0:
        return face
    landmarks = face.landmarks * factor
    landmarks.flags.writeable = False
    return dataclasses.replace(
        face,
        box=_scale_box(face.box, factor),
        landmarks=landmarks,
        eye_left=(face.eye_left[0] * factor, face.eye_left[1] * factor),
        eye_right=(face.eye_right[0] * factor, face.eye_right[1] * factor),
        nose=(face.nose[0] * factor, face.nose[1] * factor),
    )


def _scale_box(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)
