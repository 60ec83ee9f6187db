"""Face tracks of a sampled video, with the real dlib engine on faces from package images."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from cameos.faces import DetectedFace, FaceEmbedding, FaceEngine, get_engine
from cameos.faces.tracks import FaceTrack, face_tracks
from generation.backends.base import RenderedClip
from generation.media.encode import encode_clip
from generation.media.sampling import SampledFrame, SampledVideo, sample_video
from tests.cameos.images import group_photo_face

WIDTH, HEIGHT, FPS, SECONDS = 540, 960, 24, 3
# Person 1 of the group photo walks right along the top of the picture, person 5 left along the
# bottom; person 3 shows up in the middle from 1.45 s to 1.65 s, which only the 1.5 s sample
# sees (samples are 0.5 s apart).
WALKER, PASSER_BY, VISITOR = 1, 5, 3
VISIT_SECONDS = (1.45, 1.65)


def _background(width: int, height: int) -> np.ndarray:
    coarse = np.random.default_rng(3).integers(40, 200, size=(8, 5, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def _paste(canvas: np.ndarray, image: np.ndarray, left: int, top: int) -> None:
    height, width = image.shape[:2]
    canvas[top : top + height, left : left + width] = image


def _frames() -> Iterator[np.ndarray]:
    background = _background(WIDTH, HEIGHT)
    for index in range(FPS * SECONDS):
        seconds = index / FPS
        canvas = background.copy()
        _paste(canvas, group_photo_face(WALKER), round(20 + 60 * seconds), 40)
        _paste(canvas, group_photo_face(PASSER_BY), round(270 - 50 * seconds), 680)
        if VISIT_SECONDS[0] <= seconds < VISIT_SECONDS[1]:
            _paste(canvas, group_photo_face(VISITOR), 150, 360)
        yield canvas


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip as the product stores it: H.264 + AAC with the moving watermark."""
    rendered = RenderedClip(
        fps=FPS,
        frame_count=FPS * SECONDS,
        frames=_frames(),
        audio=np.zeros(SECONDS * 48_000, dtype=np.float32),
        sample_rate=48_000,
    )
    return encode_clip(rendered, tmp_path_factory.mktemp("tracks")).video


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return get_engine("dlib")


@pytest.fixture(scope="module")
def sample(clip: Path) -> SampledVideo:
    sample = sample_video(clip)
    assert [frame.time for frame in sample.frames] == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5])
    return sample


@pytest.fixture(scope="module")
def tracks(sample: SampledVideo, engine: FaceEngine) -> list[FaceTrack]:
    return face_tracks(sample, engine)


@pytest.fixture(scope="module")
def people(engine: FaceEngine) -> dict[int, FaceEmbedding]:
    """Each person's embedding from their photo, the reference a cameo would hold."""
    embeddings = {}
    for person in (WALKER, PASSER_BY, VISITOR):
        image = group_photo_face(person)
        (face,) = engine.detect(image)
        embeddings[person] = engine.embed(image, face)
    return embeddings


class CountingEngine(FaceEngine):
    """The real engine, counting its calls (a wrapper, not a mock: every call runs)."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine
        self.id = engine.id
        self.dimension = engine.dimension
        self.metric = engine.metric
        self.match_threshold = engine.match_threshold
        self.uncertain_threshold = engine.uncertain_threshold
        self.detect_calls = 0
        self.embed_calls = 0

    def detect(self, image: np.ndarray, *, min_face_size: int | None = None) -> list[DetectedFace]:
        self.detect_calls += 1
        return self.engine.detect(image, min_face_size=min_face_size)

    def embed(self, image: np.ndarray, face: DetectedFace) -> FaceEmbedding:
        self.embed_calls += 1
        return self.engine.embed(image, face)


def _matching_people(
    track: FaceTrack, engine: FaceEngine, people: dict[int, FaceEmbedding]
) -> set[int]:
    """The people every embedding of `track` matches."""
    return {
        person
        for person, reference in people.items()
        if all(engine.compare(embedding, reference).is_match for embedding in track.embeddings)
    }


def test_it_follows_each_person_in_one_track(tracks: list[FaceTrack]) -> None:
    spans = [(track.first_seen, track.last_seen, len(track.detections)) for track in tracks]

    assert spans == [(0.0, 2.5, 6), (0.0, 2.5, 6), (1.5, 1.5, 1)]
    walker, passer_by = tracks[0], tracks[1]
    # Sorted by first appearance, then from left to right: the walker starts on the left.
    assert walker.detections[0].box[0] < passer_by.detections[0].box[0]
    # The walker moves right, the passer-by left, sample after sample.
    walker_lefts = [detection.box[0] for detection in walker.detections]
    passer_by_lefts = [detection.box[0] for detection in passer_by.detections]
    assert walker_lefts[-1] > walker_lefts[0] + 100
    assert passer_by_lefts[-1] < passer_by_lefts[0] - 80


def test_each_track_matches_its_own_person_only(
    tracks: list[FaceTrack], engine: FaceEngine, people: dict[int, FaceEmbedding]
) -> None:
    assert [_matching_people(track, engine, people) for track in tracks] == [
        {WALKER},
        {PASSER_BY},
        {VISITOR},
    ]


def test_it_embeds_three_detections_spread_over_each_track(tracks: list[FaceTrack]) -> None:
    walker, passer_by, visitor = tracks

    for track in (walker, passer_by):
        assert len(track.embeddings) == 3
        # One from each third of the six detections.
        thirds = sorted(track.detections.index(detection) // 2 for detection in track.embedded)
        assert thirds == [0, 1, 2]
    assert len(visitor.embeddings) == 1
    assert visitor.embedded == visitor.detections


def test_a_face_seen_in_one_sampled_frame_is_its_own_track(
    tracks: list[FaceTrack], sample: SampledVideo
) -> None:
    visitor = tracks[2]

    (detection,) = visitor.detections
    frame, box = visitor.best_view(sample)
    assert frame is sample.frames[3]
    assert box == detection.box
    left, top, right, bottom = box
    # Pasted at (150, 360): its face is inside that square of the picture.
    assert 150 < left < right < 150 + group_photo_face(VISITOR).shape[1]
    assert 360 < top < bottom < 360 + group_photo_face(VISITOR).shape[0]


def test_a_second_call_detects_nothing_again(sample: SampledVideo, engine: FaceEngine) -> None:
    counting = CountingEngine(engine)
    fresh = dataclasses.replace(sample, memo={})

    first = face_tracks(fresh, counting)
    second = face_tracks(fresh, counting)

    assert second is first
    assert counting.detect_calls == len(sample.frames)
    assert counting.embed_calls == 3 + 3 + 1


def test_other_embedding_counts_reuse_the_detections(
    sample: SampledVideo, engine: FaceEngine
) -> None:
    counting = CountingEngine(engine)
    fresh = dataclasses.replace(sample, memo={})
    face_tracks(fresh, counting, embeddings_per_track=1)

    tracks = face_tracks(fresh, counting, embeddings_per_track=0)

    assert counting.detect_calls == len(sample.frames)
    assert counting.embed_calls == 3
    assert [len(track.detections) for track in tracks] == [6, 6, 1]
    assert all(track.embeddings == [] for track in tracks)


def _still(left: int, *, brightness: float = 1.0) -> np.ndarray:
    canvas = _background(400, 480)
    _paste(canvas, group_photo_face(WALKER), left, 100)
    return np.ascontiguousarray((canvas * brightness).astype(np.uint8))


def _stills(images: list[np.ndarray], cuts: list[bool]) -> SampledVideo:
    frames = []
    for index, (image, is_cut) in enumerate(zip(images, cuts, strict=True)):
        image.flags.writeable = False
        frames.append(SampledFrame(time=index * 0.5, image=image, is_scene_change=is_cut))
    height, width = images[0].shape[:2]
    return SampledVideo(
        frames=frames,
        width=width,
        height=height,
        duration=len(images) * 0.5,
        decoded_frame_count=len(images),
    )


def _frame_indexes(tracks: list[FaceTrack]) -> list[list[int]]:
    return [[detection.frame_index for detection in track.detections] for track in tracks]


def test_a_cut_starts_new_tracks_unless_the_face_stays_put(engine: FaceEngine) -> None:
    # The face moves 40 px (0.4 face sizes) at a cut, which a track follows between two frames
    # of one shot but not across a cut; then a flash (a cut for the sampler) leaves it in place.
    sample = _stills(
        [_still(40), _still(80), _still(80, brightness=0.7), _still(120)],
        cuts=[False, True, True, False],
    )

    tracks = face_tracks(sample, engine, embeddings_per_track=0)

    assert _frame_indexes(tracks) == [[0], [1, 2, 3]]


def test_a_missed_frame_does_not_end_a_track_but_a_cut_in_it_does(engine: FaceEngine) -> None:
    nobody = _background(400, 480)
    sample = _stills(
        [_still(40), nobody.copy(), _still(80), nobody.copy(), _still(120)],
        cuts=[False, False, False, True, False],
    )

    tracks = face_tracks(sample, engine, embeddings_per_track=0)

    assert _frame_indexes(tracks) == [[0, 2], [4]]


def test_a_small_background_face_is_found_and_still_matches_its_person(
    engine: FaceEngine, people: dict[int, FaceEmbedding]
) -> None:
    """About 45 px in a 720x1280 frame: below what the detector finds unaided (~60 px)."""
    face = group_photo_face(WALKER)
    scale = 45 / engine.detect(face)[0].width
    small = cv2.resize(face, (round(face.shape[1] * scale), round(face.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    frames = []
    for step in range(3):
        canvas = _background(720, 1280)
        _paste(canvas, small, 500 + 10 * step, 900)
        frames.append(canvas)
    assert engine.detect(frames[0]) == []  # missed without asking for small faces

    (track,) = face_tracks(_stills(frames, [False, False, False]), engine)

    assert len(track.detections) == 3
    assert track.best_detection.face.width < 60
    nearest = min(engine.distance(embedding, people[WALKER]) for embedding in track.embeddings)
    assert nearest <= engine.match_threshold
