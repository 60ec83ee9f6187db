"""Faces of a sampled video, followed from frame to frame: one track per continuous appearance.

    sample = sample_video(stored_mp4)
    for track in face_tracks(sample, get_engine()):
        track.first_seen, track.last_seen, track.embeddings
        frame, box = track.best_view(sample)  # e.g. to crop it for a moderation check

Detection runs once on every sampled frame and embedding (the expensive step, ~100 ms a face
with dlib) a few times per track, never per detection. Both are kept in `sample.memo`, so the
cameo match and the moderation checks of one video share them.

Linking is greedy and conservative: a detection joins the track whose last face is nearest,
if it is at most MAX_CENTRE_SHIFT face sizes away and of a similar size. Splitting one person
into two tracks only costs an extra embedding or two; joining two people into one track would
mix their embeddings, so every doubt starts a new track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cameos.faces.base import DetectedFace, FaceEmbedding, FaceEngine
from generation.media.sampling import SampledFrame, SampledVideo

Box = tuple[float, float, float, float]  # left, top, right, bottom, in frame pixels

DEFAULT_EMBEDDINGS_PER_TRACK = 3
# Faces this small (pixels of the frame) are looked for too: a registered person in the
# background is still a person who must have consented. About 3% of a 720x1280 frame's height.
MIN_FACE_SIZE = 40
# How far a face may move between two consecutive sampled frames (0.5 s apart at the default
# rate) and still be the same track, in face sizes (the square root of the box area). A person
# walking across a portrait frame moves about half a face size in half a second; two people
# side by side are at least ~1.5 face sizes apart.
MAX_CENTRE_SHIFT = 0.6
# Larger / smaller box area ratio's square root: a face approaching the camera grows, but not
# by half between two samples.
MAX_SIZE_RATIO = 1.5
# Across a scene change, a face continues its track only when it is where it was, at the same
# size: the same shot seen through a flash or a light change, not a cut to someone else. The
# margins are what a detector's box of an unmoved face varies by: HOG's image pyramid steps by
# 1.2, so the box of the same face can be 20% larger from one frame to the next.
SCENE_CHANGE_CENTRE_SHIFT = 0.2
SCENE_CHANGE_SIZE_RATIO = 1.25
# HOG and SCRFD miss a face now and then (motion blur, a blink of the head); one missed sampled
# frame does not end a track.
MAX_MISSED_FRAMES = 1
# A face seen in profile embeds poorly; frontalness never scores below this so that a track
# seen only in profile still gets its embeddings.
MIN_FRONTALNESS = 0.2


# Compared by identity: a detection holds numpy arrays, which have no single truth value.
@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One detection of a track: a face in `sample.frames[frame_index]`."""

    frame_index: int
    time: float  # seconds, the frame's time
    face: DetectedFace = field(repr=False)

    @property
    def box(self) -> Box:
        """May extend past the frame's edges (a face partly out of the picture)."""
        return self.face.box

    @property
    def score(self) -> float:
        return self.face.score


@dataclass
class FaceTrack:
    """One face followed through consecutive sampled frames (never across a cut)."""

    detections: list[TrackedFace]  # in time order, at most one per sampled frame
    # Of up to `embeddings_per_track` detections chosen for quality and spread over time, the
    # best first; `embedded` holds the detection each was made from.
    embeddings: list[FaceEmbedding] = field(default_factory=list)
    embedded: list[TrackedFace] = field(default_factory=list)
    # Detection quality (see `_quality`), parallel to `detections`.
    qualities: list[float] = field(default_factory=list, repr=False)

    @property
    def first_seen(self) -> float:
        return self.detections[0].time

    @property
    def last_seen(self) -> float:
        return self.detections[-1].time

    @property
    def best_detection(self) -> TrackedFace:
        """The largest, most frontal, best-scored detection of the track."""
        best = max(range(len(self.detections)), key=lambda index: self.qualities[index])
        return self.detections[best]

    def best_view(self, sample: SampledVideo) -> tuple[SampledFrame, Box]:
        """The frame of `best_detection` and its box (which may extend past the frame).

        Precondition: `sample` is the video these tracks were found in.
        """
        best = self.best_detection
        return sample.frames[best.frame_index], best.box


def face_tracks(
    sample: SampledVideo,
    engine: FaceEngine,
    *,
    embeddings_per_track: int = DEFAULT_EMBEDDINGS_PER_TRACK,
) -> list[FaceTrack]:
    """The face tracks of `sample`, by first appearance, each with its embeddings.

    Memoised in `sample.memo` per engine id and `embeddings_per_track`: a second call returns
    the same list (do not modify it). The detections themselves are memoised per engine id,
    so a call with another `embeddings_per_track` embeds again but does not detect again.
    """
    if embeddings_per_track < 0:
        raise ValueError(f"embeddings_per_track must be >= 0, got {embeddings_per_track}")
    key = f"cameos.faces.tracks:{engine.id}:{embeddings_per_track}"
    memoised: list[FaceTrack] | None = sample.memo.get(key)
    if memoised is not None:
        return memoised
    tracks = _link(sample, detect_faces(sample, engine))
    for track in tracks:
        track.qualities = _qualities(track, sample)
        _embed(track, sample, engine, embeddings_per_track)
    sample.memo[key] = tracks
    return tracks


def detect_faces(sample: SampledVideo, engine: FaceEngine) -> list[list[DetectedFace]]:
    """The faces of each sampled frame (parallel to `sample.frames`), memoised per engine."""
    key = f"cameos.faces.detections:{engine.id}"
    memoised: list[list[DetectedFace]] | None = sample.memo.get(key)
    if memoised is None:
        memoised = [engine.detect(frame.image, min_face_size=MIN_FACE_SIZE)
                    for frame in sample.frames]
        sample.memo[key] = memoised
    return memoised


def _link(sample: SampledVideo, faces_per_frame: list[list[DetectedFace]]) -> list[FaceTrack]:
    tracks: list[FaceTrack] = []
    # Tracks that may still continue, with the index of the last frame they were seen in.
    open_tracks: list[tuple[FaceTrack, int]] = []
    for frame_index, (frame, faces) in enumerate(zip(sample.frames, faces_per_frame, strict=True)):
        open_tracks = [
            (track, last)
            for track, last in open_tracks
            if frame_index - last <= MAX_MISSED_FRAMES + 1
        ]
        candidates = []
        for track_number, (track, last) in enumerate(open_tracks):
            previous = track.detections[-1].face
            # A cut in a frame the track missed separates it from this frame just the same.
            is_cut_since = any(
                sample.frames[index].is_scene_change for index in range(last + 1, frame_index + 1)
            )
            for face_number, face in enumerate(faces):
                shift = _continuation_shift(previous, face, is_scene_change=is_cut_since)
                if shift is not None:
                    # Prefer the track seen in the frame just before, then the nearest face.
                    candidates.append((frame_index - last, shift, track_number, face_number))
        candidates.sort()
        taken_tracks: set[int] = set()
        taken_faces: set[int] = set()
        linked: dict[int, int] = {}
        for _gap, _shift, track_number, face_number in candidates:
            if track_number in taken_tracks or face_number in taken_faces:
                continue
            taken_tracks.add(track_number)
            taken_faces.add(face_number)
            linked[face_number] = track_number
        still_open = [
            entry for number, entry in enumerate(open_tracks) if number not in taken_tracks
        ]
        for face_number, face in enumerate(faces):
            detection = TrackedFace(frame_index=frame_index, time=frame.time, face=face)
            if face_number in linked:
                track = open_tracks[linked[face_number]][0]
                track.detections.append(detection)
            else:
                track = FaceTrack(detections=[detection])
                tracks.append(track)
            still_open.append((track, frame_index))
        open_tracks = still_open
    tracks.sort(key=lambda track: (track.first_seen, track.detections[0].box[0]))
    return tracks


def _continuation_shift(
    previous: DetectedFace, face: DetectedFace, *, is_scene_change: bool
) -> float | None:
    """How far `face` is from `previous` in face sizes, or None if it cannot be the same."""
    previous_size = _size(previous.box)
    size = _size(face.box)
    if previous_size <= 0 or size <= 0:
        return None
    size_ratio = max(size, previous_size) / min(size, previous_size)
    shift = math.dist(_centre(previous.box), _centre(face.box)) / math.sqrt(size * previous_size)
    max_shift, max_ratio = (
        (SCENE_CHANGE_CENTRE_SHIFT, SCENE_CHANGE_SIZE_RATIO)
        if is_scene_change
        else (MAX_CENTRE_SHIFT, MAX_SIZE_RATIO)
    )
    if shift > max_shift or size_ratio > max_ratio:
        return None
    return shift


def _qualities(track: FaceTrack, sample: SampledVideo) -> list[float]:
    """How well each detection should embed: its size in the picture, frontalness and score
    (relative to the track's best score, since engines' scores have different scales)."""
    best_score = max(detection.score for detection in track.detections)
    qualities = []
    for detection in track.detections:
        image = sample.frames[detection.frame_index].image
        relative_score = detection.score / best_score if best_score > 0 else 1.0
        qualities.append(
            _visible_size(detection.box, width=image.shape[1], height=image.shape[0])
            * _frontalness(detection.face)
            * (0.5 + 0.5 * max(0.0, relative_score))
        )
    return qualities


def _embed(
    track: FaceTrack, sample: SampledVideo, engine: FaceEngine, embeddings_per_track: int
) -> None:
    """Embed the best detection of each of `embeddings_per_track` equal stretches of the track.

    Precondition: `track.qualities` is filled in.
    """
    count = min(embeddings_per_track, len(track.detections))
    if count == 0:
        return
    chosen = [
        max(stretch, key=lambda index: track.qualities[index])
        for stretch in np.array_split(np.arange(len(track.detections)), count)
    ]
    chosen.sort(key=lambda index: track.qualities[index], reverse=True)
    for index in chosen:
        detection = track.detections[int(index)]
        image = sample.frames[detection.frame_index].image
        track.embeddings.append(engine.embed(image, detection.face))
        track.embedded.append(detection)


def _size(box: Box) -> float:
    return math.sqrt(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _centre(box: Box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _visible_size(box: Box, *, width: int, height: int) -> float:
    """The face size (square root of the box area) counting only the part inside the frame."""
    left, top = max(0.0, box[0]), max(0.0, box[1])
    right, bottom = min(float(width), box[2]), min(float(height), box[3])
    return _size((left, top, right, bottom)) if right > left and bottom > top else 0.0


def _frontalness(face: DetectedFace) -> float:
    """1 for a face looking at the camera, lower as it turns: the nose's offset from the eyes'
    midpoint along the eye line, in eye distances, is ~0 frontal and ~0.4 at 45 degrees."""
    eye_left = np.asarray(face.eye_left)
    eye_right = np.asarray(face.eye_right)
    eye_line = eye_right - eye_left
    eye_distance = float(np.linalg.norm(eye_line))
    if eye_distance < 1.0:
        return MIN_FRONTALNESS
    offset = float(np.dot(np.asarray(face.nose) - (eye_left + eye_right) / 2, eye_line))
    turn = abs(offset) / eye_distance**2
    return max(MIN_FRONTALNESS, 1.0 - 2.0 * turn)
