"""Tagged cameos in the reference backend's clips, checked the way the output scan checks them:
the real dlib face engine on real frames (decoded from the MP4 where the encode matters). No
mocks, no database.

The faces are crops of images that ship in installed wheels, cut with fixed boxes measured once
with dlib's HOG detector, so the tests do not depend on detecting them first.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.feature import match_template

from cameos.faces import DetectedFace, FaceEmbedding, FaceEngine, get_engine
from generation.backends.base import CameoReference, RenderRequest
from generation.backends.cameo_appearance import COLOR_WORDS, parse_preferences
from generation.backends.cameo_layer import MAX_REFERENCE_SIDE, load_reference_image
from generation.backends.reference import FRAMES_PER_SECOND, ReferenceBackend
from generation.media.encode import encode_clip

PROMPT = '@maya skateboarding through the park, she says "watch this" and lands it.'
CROP_SIDE = 256
# skimage's astronaut: HOG finds her face at (175, 76)-(265, 166), 90 px; 30 px more on every
# side makes the face 60% of the crop, the framing cameos hands the renderer.
ASTRONAUT_FACE_BOX = (145, 45, 295, 195)
# insightface's t1.jpg, the rightmost person: HOG box (1118, 283)-(1226, 390), 108 px.
GROUP_PHOTO_FACE_BOX = (1082, 246, 1262, 426)
SAMPLED_FRAMES = 6

Frames = list[np.ndarray]


# --- reference images and renders, made once per module ------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cameo-references")
    # Found without importing insightface, which is installed without its dependencies.
    insightface = importlib.util.find_spec("insightface")
    assert insightface is not None and insightface.submodule_search_locations
    package = Path(next(iter(insightface.submodule_search_locations)))
    group_photo = package / "data" / "images" / "t1.jpg"
    faces = {
        "astronaut": Image.fromarray(data.astronaut()).crop(ASTRONAUT_FACE_BOX),
        "group": Image.open(group_photo).convert("RGB").crop(GROUP_PHOTO_FACE_BOX),
    }
    paths = {}
    for name, face in faces.items():
        paths[name] = folder / f"{name}.png"
        face.resize((CROP_SIDE, CROP_SIDE), Image.Resampling.LANCZOS).save(paths[name])
    paths["cat"] = folder / "cat.png"
    Image.fromarray(data.chelsea()).save(paths["cat"])
    paths["park"] = folder / "park.png"
    Image.fromarray(data.coffee()).save(paths["park"])
    return paths


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return get_engine("dlib")


@pytest.fixture(scope="module")
def reference_embeddings(engine: FaceEngine, images: dict[str, Path]) -> dict[str, FaceEmbedding]:
    embeddings = {}
    for name in ("astronaut", "group"):
        crop = np.asarray(Image.open(images[name]))
        faces = engine.detect(crop)
        assert len(faces) == 1, f"the {name} crop should hold exactly one face"
        embeddings[name] = engine.embed(crop, faces[0])
    return embeddings


def person(path: Path, handle: str = "maya", preferences: str = "") -> CameoReference:
    return CameoReference(
        handle=handle,
        kind="person",
        display_name=handle.title(),
        images=(path,),
        preferences=preferences,
    )


def character(path: Path, handle: str = "whiskers") -> CameoReference:
    return CameoReference(handle=handle, kind="character", display_name="Whiskers", images=(path,))


def request(
    *cameos: CameoReference, width: int = 360, height: int = 640, seconds: int = 1, **inputs: Path
) -> RenderRequest:
    return RenderRequest(
        prompt=PROMPT,
        seconds=seconds,
        width=width,
        height=height,
        seed=11,
        cameos=cameos,
        **inputs,
    )


def rendered_frames(render_request: RenderRequest) -> Frames:
    return list(ReferenceBackend().render(render_request).frames)


def encoded_and_decoded(render_request: RenderRequest, folder: Path) -> Frames:
    media = encode_clip(ReferenceBackend().render(render_request), folder)
    with av.open(str(media.video)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def sampled(frames: Frames, count: int = SAMPLED_FRAMES) -> Frames:
    return [frames[index] for index in np.linspace(0, len(frames) - 1, count).round().astype(int)]


def centre(face: DetectedFace) -> tuple[float, float]:
    left, top, right, bottom = face.box
    return ((left + right) / 2, (top + bottom) / 2)


@pytest.fixture(scope="module")
def one_person_clip(images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Frames:
    return encoded_and_decoded(
        request(person(images["astronaut"]), seconds=2), tmp_path_factory.mktemp("one-person")
    )


@pytest.fixture(scope="module")
def one_person_faces(engine: FaceEngine, one_person_clip: Frames) -> list[list[DetectedFace]]:
    return [engine.detect(frame) for frame in sampled(one_person_clip)]


@pytest.fixture(scope="module")
def render_cached() -> Callable[[RenderRequest], Frames]:
    """Renders (not encoded) shared by the tests of this module."""
    renders: dict[RenderRequest, Frames] = {}

    def render(render_request: RenderRequest) -> Frames:
        if render_request not in renders:
            renders[render_request] = rendered_frames(render_request)
        return renders[render_request]

    return render


# --- a person ----------------------------------------------------------------------------


def test_a_tagged_person_is_found_and_recognised_in_most_frames_of_the_video(
    engine: FaceEngine,
    one_person_clip: Frames,
    one_person_faces: list[list[DetectedFace]],
    reference_embeddings: dict[str, FaceEmbedding],
) -> None:
    found = [
        (frame, faces[0])
        for frame, faces in zip(sampled(one_person_clip), one_person_faces, strict=True)
        if len(faces) == 1
    ]

    assert len(found) >= SAMPLED_FRAMES - 1
    for frame, face in found:
        assert 0.18 * 640 <= face.height <= 0.35 * 640  # a realistic size, not a close-up
        match = engine.compare(reference_embeddings["astronaut"], engine.embed(frame, face))
        assert match.is_match, f"distance {match.distance:.3f}"


def test_a_tagged_person_moves_through_the_clip(
    one_person_faces: list[list[DetectedFace]],
) -> None:
    centres = np.array([centre(faces[0]) for faces in one_person_faces if faces])

    travel = np.linalg.norm(centres - centres[0], axis=1).max()
    assert travel >= 0.1 * 360
    assert len({tuple(point) for point in centres.round()}) >= 3


def test_two_tagged_people_each_appear_as_themselves(
    engine: FaceEngine,
    images: dict[str, Path],
    reference_embeddings: dict[str, FaceEmbedding],
    tmp_path: Path,
) -> None:
    two_people = request(
        person(images["astronaut"], "maya"),
        person(images["group"], "jo"),
        width=960,
        height=540,
    )
    frames = sampled(encoded_and_decoded(two_people, tmp_path), 4)

    faces_per_frame = [engine.detect(frame) for frame in frames]

    assert sum(len(faces) == 2 for faces in faces_per_frame) >= 3
    frame, faces = next(
        (frame, faces)
        for frame, faces in zip(frames, faces_per_frame, strict=True)
        if len(faces) == 2
    )
    left, right = sorted(faces, key=lambda face: face.box[0])
    assert left.box[2] <= right.box[0]  # side by side, not overlapping
    # Tagged first, walks the left lane.
    assert engine.compare(reference_embeddings["astronaut"], engine.embed(frame, left)).is_match
    assert engine.compare(reference_embeddings["group"], engine.embed(frame, right)).is_match


def test_three_tagged_people_in_a_tall_frame_stand_apart(
    engine: FaceEngine, images: dict[str, Path], render_cached: Callable[[RenderRequest], Frames]
) -> None:
    three_people = request(
        person(images["astronaut"], "maya"),
        person(images["group"], "jo"),
        person(images["astronaut"], "sam"),
        width=540,
        height=960,
    )
    frames = render_cached(three_people)

    faces = engine.detect(frames[len(frames) // 2])

    assert len(faces) == 3
    for index, face in enumerate(faces):
        for other in faces[index + 1 :]:
            overlap_x = min(face.box[2], other.box[2]) - max(face.box[0], other.box[0])
            overlap_y = min(face.box[3], other.box[3]) - max(face.box[1], other.box[1])
            assert overlap_x <= 0 or overlap_y <= 0


@pytest.mark.parametrize("mode", ["image-to-video", "remix"])
def test_a_tagged_person_appears_in_every_mode(
    mode: str,
    engine: FaceEngine,
    images: dict[str, Path],
    reference_embeddings: dict[str, FaceEmbedding],
    tmp_path: Path,
) -> None:
    if mode == "image-to-video":
        inputs = {"input_reference": images["park"]}
    else:
        source = encode_clip(ReferenceBackend().render(request()), tmp_path / "source")
        inputs = {"source_video": source.video}
    frames = rendered_frames(request(person(images["astronaut"]), **inputs))
    frame = frames[len(frames) // 2]

    faces = engine.detect(frame)

    assert len(faces) == 1
    assert engine.compare(reference_embeddings["astronaut"], engine.embed(frame, faces[0])).is_match


# --- a character, preferences -------------------------------------------------------------


def still_correlation(frame: np.ndarray, still: np.ndarray) -> float:
    """The best normalised cross-correlation of the still's middle with the frame, over the
    heights a card can have (the renderer scales it as it walks); at a third of the size, which
    keeps the search quick and the correlation as telling."""
    reduction = 3
    small_frame = Image.fromarray(frame).reduce(reduction)
    gray_frame = np.asarray(small_frame, dtype=np.float32).mean(axis=2)
    best = -1.0
    for card_height in range(150, 231, 5):
        height = round(card_height / reduction)
        width = round(height * still.shape[1] / still.shape[0])
        card = Image.fromarray(still).resize((width, height), Image.Resampling.BOX)
        gray_card = np.asarray(card, dtype=np.float32).mean(axis=2)
        # The middle only: the card's edges are feathered into the background.
        inner = gray_card[height // 6 : -(height // 6), width // 6 : -(width // 6)]
        best = max(best, float(match_template(gray_frame, inner).max()))
    return best


def test_a_tagged_character_still_appears_in_the_frames(
    images: dict[str, Path], render_cached: Callable[[RenderRequest], Frames]
) -> None:
    still = np.asarray(Image.open(images["cat"]))
    with_character = render_cached(request(character(images["cat"])))
    without = render_cached(request())

    for frame in sampled(with_character, 3):
        assert still_correlation(frame, still) >= 0.85
    assert still_correlation(without[len(without) // 2], still) < 0.6


def red_share_above(frame: np.ndarray, face: DetectedFace) -> float:
    left, top, right, bottom = (round(value) for value in face.box)
    above = frame[max(0, top - (bottom - top) // 2) : top, max(0, left) : right].astype(int)
    red, green, blue = above[..., 0], above[..., 1], above[..., 2]
    return float(np.mean((red > 150) & (green < 90) & (blue < 90)))


def test_a_red_cap_preference_puts_a_red_cap_above_the_face(
    engine: FaceEngine, images: dict[str, Path], render_cached: Callable[[RenderRequest], Frames]
) -> None:
    capped = render_cached(request(person(images["astronaut"], preferences="always my red cap")))
    bare = render_cached(request(person(images["astronaut"])))
    middle = len(capped) // 2

    faces = engine.detect(capped[middle])

    assert len(faces) == 1
    assert red_share_above(capped[middle], faces[0]) >= 0.3
    assert red_share_above(bare[middle], faces[0]) < 0.05


def test_sunglasses_leave_the_face_recognisable(
    engine: FaceEngine,
    images: dict[str, Path],
    reference_embeddings: dict[str, FaceEmbedding],
    render_cached: Callable[[RenderRequest], Frames],
) -> None:
    frames = render_cached(request(person(images["astronaut"], preferences="black sunglasses")))
    bare = render_cached(request(person(images["astronaut"])))
    frame = frames[len(frames) // 2]

    faces = engine.detect(frame)

    assert len(faces) == 1
    assert engine.compare(reference_embeddings["astronaut"], engine.embed(frame, faces[0])).is_match
    assert not np.array_equal(frame, bare[len(bare) // 2])  # they were drawn


def test_a_preference_it_cannot_draw_is_shown_as_a_caption_at_the_top(
    images: dict[str, Path], render_cached: Callable[[RenderRequest], Frames]
) -> None:
    captioned = render_cached(request(person(images["astronaut"], preferences="always smiling")))
    bare = render_cached(request(person(images["astronaut"])))

    def white_text_pixels(frame: np.ndarray) -> int:
        return int(np.all(frame[: 640 // 10] > 235, axis=2).sum())

    assert white_text_pixels(captioned[0]) - white_text_pixels(bare[0]) >= 80


def test_preferences_are_read_into_garments_and_words() -> None:
    appearance = parse_preferences("Always wearing my red cap and a navy hoodie, always smiling")

    assert appearance.headwear is not None
    assert (appearance.headwear.kind, appearance.headwear.color) == ("cap", COLOR_WORDS["red"])
    assert appearance.outfit_color == COLOR_WORDS["navy"]
    assert appearance.eyewear is None
    assert appearance.not_drawn == "always smiling"


def test_a_negated_garment_is_not_drawn() -> None:
    appearance = parse_preferences("never put me in a hat or glasses")

    assert appearance.headwear is None
    assert appearance.eyewear is None
    assert appearance.not_drawn == "never put me in a hat or glasses"


def test_two_negations_ask_for_the_garment() -> None:
    appearance = parse_preferences("never without my green beanie")

    assert appearance.headwear is not None
    assert (appearance.headwear.kind, appearance.headwear.color) == ("beanie", COLOR_WORDS["green"])
    assert appearance.not_drawn == ""


# --- determinism and bad inputs -----------------------------------------------------------


def test_the_same_request_renders_the_same_frames(
    images: dict[str, Path], render_cached: Callable[[RenderRequest], Frames]
) -> None:
    cameos = (person(images["astronaut"], preferences="red cap"), character(images["cat"]))
    first = render_cached(request(*cameos))
    second = rendered_frames(request(*cameos))

    def digests(frames: Frames) -> list[str]:
        return [hashlib.sha256(frame.tobytes()).hexdigest() for frame in sampled(frames, 3)]

    assert len(first) == len(second) == FRAMES_PER_SECOND
    assert digests(first) == digests(second)
    assert digests(first) != digests(render_cached(request()))


def test_an_undecodable_reference_image_fails_the_render_with_a_clear_error(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "face.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")

    with pytest.raises(
        ValueError, match=r"cameo @maya: reference image face.png cannot be decoded"
    ):
        ReferenceBackend().render(request(person(broken)))


def test_a_missing_reference_image_fails_the_render_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cameo @maya: reference image gone.png cannot be"):
        ReferenceBackend().render(request(person(tmp_path / "gone.png")))


def test_a_huge_reference_image_is_downscaled(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"
    Image.fromarray(data.chelsea()).resize((4500, 3000)).save(huge, quality=80)

    image = load_reference_image(huge, handle="whiskers")

    assert max(image.size) <= MAX_REFERENCE_SIDE
    assert image.mode == "RGB"


def test_more_than_three_cameos_are_refused(images: dict[str, Path]) -> None:
    four = tuple(person(images["astronaut"], f"person{index}") for index in range(4))

    with pytest.raises(ValueError, match="at most 3 cameos"):
        ReferenceBackend().render(request(*four))
