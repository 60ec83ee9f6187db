"""The face engines on real images: dlib end to end, insightface's loading with tiny ONNX models."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from django.core.exceptions import ImproperlyConfigured
from onnx import TensorProto, helper, numpy_helper

from cameos.faces import (
    DetectedFace,
    FaceEmbedding,
    FaceEngine,
    check_engine_configuration,
    get_engine,
)
from cameos.faces.calibration import (
    FACE_SOURCES,
    Augmentation,
    FaceSource,
    augment,
    embed_face_near,
    measure,
)
from cameos.faces.insightface_engine import InsightFaceEngine
from tests.cameos.images import (
    GROUP_PHOTO_FACES,
    astronaut,
    group_photo,
    group_photo_face,
    tom_hanks,
    video_frame,
)

# Viewing conditions the same person must survive, singly and combined.
AUGMENTATIONS = (
    Augmentation(scale=0.6, jpeg_quality=30),
    Augmentation(scale=1.8, rotation=12.0, mirror=True),
    Augmentation(gain=0.65, offset=-15.0, blur=0.015),
    Augmentation(scale=0.8, rotation=-10.0, shift=(0.25, -0.2), greyscale=True, jpeg_quality=50),
)
SOURCES = tuple(
    source for source in FACE_SOURCES if source.label in ("astronaut", "tom-hanks", "t1-person-0")
)


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return get_engine("dlib")


@pytest.fixture(scope="session")
def people(engine: FaceEngine) -> dict[str, FaceEmbedding]:
    """One embedding per person: the six of the group photo, the astronaut and Tom Hanks."""
    images = {f"t1-person-{index}": group_photo_face(index) for index in range(6)}
    images["astronaut"] = astronaut()
    images["tom-hanks"] = tom_hanks()
    embeddings = {}
    for name, image in images.items():
        (face,) = engine.detect(image)
        embeddings[name] = engine.embed(image, face)
    return embeddings


def _centre(face: DetectedFace) -> tuple[float, float]:
    return ((face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2)


def test_it_finds_the_six_people_of_the_group_photo(engine: FaceEngine) -> None:
    faces = engine.detect(group_photo())

    assert len(faces) == 6
    scores = [face.score for face in faces]
    assert scores == sorted(scores, reverse=True)
    for (centre_x, centre_y), size in GROUP_PHOTO_FACES:
        nearest = min(
            faces, key=lambda face: np.hypot(*np.subtract(_centre(face), (centre_x, centre_y)))
        )
        assert np.hypot(*np.subtract(_centre(nearest), (centre_x, centre_y))) < size / 4


def test_it_finds_the_six_people_on_a_720p_frame(engine: FaceEngine) -> None:
    # Faces of 88-126 px: HOG searches a 1280x720 frame at full resolution.
    assert len(engine.detect(video_frame())) == 6


def test_it_finds_one_face_on_the_astronaut_with_sane_landmarks(engine: FaceEngine) -> None:
    (face,) = engine.detect(astronaut())

    left, top, right, bottom = face.box
    assert 80 <= face.width <= 130
    assert face.landmarks.shape == (5, 2)
    assert all(left <= x <= right and top <= y <= bottom for x, y in face.landmarks)
    assert face.eye_left[0] < face.nose[0] < face.eye_right[0]
    assert max(face.eye_left[1], face.eye_right[1]) < face.nose[1]


def _astronaut_on_a_video_frame() -> np.ndarray:
    """The astronaut at 1280x720, the size dlib's HOG searches without resizing first."""
    canvas = np.zeros((720, 1280, 3), dtype=np.uint8)
    canvas[104:616, 384:896] = astronaut()
    return canvas


def test_it_drops_hogs_false_positive_on_the_mission_patch(engine: FaceEngine) -> None:
    # On this frame dlib's HOG alone also boxes the patch on the suit (score 0.1).
    (face,) = engine.detect(_astronaut_on_a_video_frame())

    assert np.hypot(*np.subtract(_centre(face), (384 + 224, 104 + 124))) < 25


def test_it_finds_the_face_of_a_small_aligned_crop(engine: FaceEngine) -> None:
    (face,) = engine.detect(tom_hanks())

    assert face.eye_left[0] < face.eye_right[0]


def test_it_reads_flipped_views_of_an_image(engine: FaceEngine) -> None:
    # A negative-stride view: dlib would read its memory as the unflipped image and find nothing.
    (face,) = engine.detect(_astronaut_on_a_video_frame()[:, ::-1])

    assert np.hypot(*np.subtract(_centre(face), (1279 - 384 - 224, 104 + 124))) < 25
    assert face.eye_left[0] < face.nose[0] < face.eye_right[0]


def test_it_refuses_images_that_are_not_rgb_uint8(engine: FaceEngine) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        engine.detect(astronaut()[:, :, 0])
    with pytest.raises(ValueError, match="RGB uint8"):
        engine.detect(astronaut().astype(np.float32))


@pytest.mark.parametrize("source", SOURCES, ids=lambda source: source.label)
def test_the_same_person_matches_under_augmentation(
    engine: FaceEngine, people: dict[str, FaceEmbedding], source: FaceSource
) -> None:
    for augmentation in AUGMENTATIONS:
        image, centre, size = augment(source, augmentation)
        embedding = embed_face_near(engine, image, centre, size)

        assert embedding is not None, augmentation.describe()
        match = engine.compare(people[source.label], embedding)
        assert match.is_match, (augmentation.describe(), match.distance)


def test_different_people_do_not_match(
    engine: FaceEngine, people: dict[str, FaceEmbedding]
) -> None:
    for first, second in itertools.combinations(people, 2):
        match = engine.compare(people[first], people[second])

        assert not match.is_match, (first, second, match.distance)
        assert match.distance > engine.match_threshold


def test_an_embedding_is_the_engines_float32_vector(
    engine: FaceEngine, people: dict[str, FaceEmbedding]
) -> None:
    embedding = people["astronaut"]

    assert embedding.engine == "dlib-resnet-v1"
    assert embedding.dimension == engine.dimension == 128
    assert embedding.vector.dtype == np.float32
    assert embedding.vector.shape == (128,)


def test_embeddings_of_different_engines_refuse_to_compare(
    engine: FaceEngine, people: dict[str, FaceEmbedding], tmp_path: Path
) -> None:
    other_engine = InsightFaceEngine(_tiny_model_folder(tmp_path))
    face = _astronaut_face_for_insightface()
    other = other_engine.embed(astronaut(), face)

    with pytest.raises(ValueError, match="cannot compare embeddings"):
        engine.compare(people["astronaut"], other)
    with pytest.raises(ValueError, match="cannot compare embeddings"):
        other_engine.distance(people["astronaut"], other)


def test_get_engine_returns_one_instance_per_process(engine: FaceEngine, settings: Any) -> None:
    settings.FACE_ENGINE = "dlib"

    assert get_engine() is engine
    assert get_engine("dlib") is engine


def test_it_refuses_an_unknown_engine_name() -> None:
    with pytest.raises(
        ValueError, match="unknown face engine 'facenet'; choose one of dlib, insightface"
    ):
        get_engine("facenet")


def test_the_configured_engine_loads(settings: Any) -> None:
    settings.FACE_ENGINE = "dlib"

    check_engine_configuration()


def test_the_configuration_check_names_what_is_missing(settings: Any) -> None:
    settings.FACE_ENGINE = "facenet"
    with pytest.raises(ImproperlyConfigured, match="FACE_ENGINE='facenet' is not a face engine"):
        check_engine_configuration()

    settings.FACE_ENGINE = "insightface"
    settings.FACE_MODEL_DIR = ""
    with pytest.raises(ImproperlyConfigured, match="FACE_ENGINE=insightface needs FACE_MODEL_DIR"):
        check_engine_configuration()


def test_a_small_calibration_run_has_no_false_match_at_the_threshold(engine: FaceEngine) -> None:
    result = measure(engine, augmentations_per_identity=2, seed=11)

    assert result.identities == 8
    assert sum(result.undetected.values()) <= 2
    assert len(result.impostor) >= 200
    false_match_rate, false_non_match_rate = result.error_rates(engine.match_threshold)
    assert false_match_rate == 0.0
    assert false_non_match_rate < 0.1


# --- insightface: the model folder, without the real weights --------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _recognition_model(path: Path, *, dimension: int = 64, side: int = 112, seed: int = 0) -> Path:
    """An ArcFace-shaped graph: (n, 3, side, side) image -> (n, dimension) vector.

    It averages 4x4 blocks of the crop and projects them with fixed random weights, so different
    faces give different vectors and the same face the same one.
    """
    weights = np.random.default_rng(seed).standard_normal((48, dimension)).astype(np.float32)
    block = side // 4
    nodes = [
        helper.make_node(
            "AveragePool", ["data"], ["pooled"], kernel_shape=[block, block], strides=[block, block]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "projection"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "recognition",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, side, side])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["n", dimension])],
        [numpy_helper.from_array(weights, "projection")],
    )
    return _save(graph, path)


def _detection_model(path: Path) -> Path:
    """An SCRFD-shaped graph (3 strides, 2 anchors, scores/boxes/5 points) that finds nothing."""
    nodes, weights, outputs = [], [], []
    for kind, width, bias in (("score", 1, -10.0), ("bbox", 4, 1.0), ("kps", 10, 0.0)):
        for stride in (8, 16, 32):
            name = f"{kind}_{stride}"
            weights += [
                numpy_helper.from_array(np.zeros((2 * width, 3, 1, 1), np.float32), f"{name}_w"),
                numpy_helper.from_array(np.full(2 * width, bias, np.float32), f"{name}_b"),
                numpy_helper.from_array(np.array([-1, width], np.int64), f"{name}_shape"),
            ]
            reshaped = f"{name}_logit" if kind == "score" else name
            nodes += [
                helper.make_node(
                    "AveragePool",
                    ["input.1"],
                    [f"{name}_pool"],
                    kernel_shape=[stride, stride],
                    strides=[stride, stride],
                ),
                helper.make_node(
                    "Conv", [f"{name}_pool", f"{name}_w", f"{name}_b"], [f"{name}_conv"]
                ),
                helper.make_node(
                    "Transpose", [f"{name}_conv"], [f"{name}_nhwc"], perm=[0, 2, 3, 1]
                ),
                helper.make_node("Reshape", [f"{name}_nhwc", f"{name}_shape"], [reshaped]),
            ]
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [reshaped], [name]))
            outputs.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"{name}_n", width])
            )
    graph = helper.make_graph(
        nodes,
        "detection",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        weights,
    )
    return _save(graph, path)


def _tiny_model_folder(folder: Path) -> Path:
    """buffalo_l's layout with tiny models: a detector, a recognizer and a landmark model."""
    folder.mkdir(parents=True, exist_ok=True)
    _detection_model(folder / "det_tiny.onnx")
    _recognition_model(folder / "tiny_recognizer.onnx")
    _recognition_model(folder / "landmarks_192.onnx", dimension=212, side=192)
    return folder


def _astronaut_face_for_insightface() -> DetectedFace:
    # SCRFD's point order: eyes (image left, image right), nose tip, mouth corners.
    landmarks = np.array(
        [[203.5, 102.0], [246.5, 104.5], [224.0, 135.0], [208.0, 152.0], [242.0, 153.0]]
    )
    return DetectedFace(
        box=(174.0, 74.0, 274.0, 174.0),
        landmarks=landmarks,
        score=0.9,
        eye_left=(203.5, 102.0),
        eye_right=(246.5, 104.5),
        nose=(224.0, 135.0),
    )


@pytest.mark.usefixtures("no_network")
def test_insightface_loads_a_model_folder_and_embeds_offline(tmp_path: Path) -> None:
    engine = InsightFaceEngine(_tiny_model_folder(tmp_path))

    assert engine.id.startswith("insightface-tiny-recognizer-")
    assert engine.dimension == 64
    assert engine.model_folder.detection.name == "det_tiny.onnx"
    assert engine.model_folder.recognition.name == "tiny_recognizer.onnx"
    assert engine.detect(astronaut()) == []
    face = _astronaut_face_for_insightface()
    embedding = engine.embed(astronaut(), face)
    assert embedding.engine == engine.id
    assert embedding.dimension == 64
    assert embedding.vector.shape == (64,)
    assert embedding.vector.dtype == np.float32
    assert np.linalg.norm(embedding.vector) == pytest.approx(1.0, abs=1e-5)
    assert engine.distance(embedding, engine.embed(astronaut(), face)) == pytest.approx(
        0.0, abs=1e-6
    )
    moved = DetectedFace(
        box=face.box,
        landmarks=face.landmarks + np.array([40.0, 200.0]),
        score=face.score,
        eye_left=face.eye_left,
        eye_right=face.eye_right,
        nose=face.nose,
    )
    assert engine.distance(embedding, engine.embed(astronaut(), moved)) > 0.01


def test_insightface_ids_tell_two_models_of_one_name_apart(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    for folder, seed in ((first, 1), (second, 2)):
        folder.mkdir()
        _detection_model(folder / "det_10g.onnx")
        _recognition_model(folder / "w600k_r50.onnx", seed=seed)

    first_id = InsightFaceEngine(first).id
    second_id = InsightFaceEngine(second).id

    assert first_id.startswith("insightface-w600k-r50-")
    assert second_id.startswith("insightface-w600k-r50-")
    assert first_id != second_id
    assert len(first_id) <= 64


def test_insightface_refuses_a_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=f"FACE_MODEL_DIR={tmp_path / 'absent'} does not exist"
    ):
        InsightFaceEngine(tmp_path / "absent")
    with pytest.raises(ImproperlyConfigured, match="needs FACE_MODEL_DIR"):
        InsightFaceEngine("")
    (tmp_path / "file").write_text("")
    with pytest.raises(ImproperlyConfigured, match="is not a folder"):
        InsightFaceEngine(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.txt").write_text("models go here")
    with pytest.raises(
        ImproperlyConfigured, match="has no .onnx files; it must contain exactly one SCRFD"
    ):
        InsightFaceEngine(tmp_path / "empty")


def test_insightface_refuses_files_that_are_not_models(tmp_path: Path) -> None:
    _detection_model(tmp_path / "det_10g.onnx")
    (tmp_path / "w600k_r50.onnx").write_bytes(b"<html>404 Not Found</html>")

    with pytest.raises(ImproperlyConfigured, match="w600k_r50.onnx .*is not a readable ONNX model"):
        InsightFaceEngine(tmp_path)

    (tmp_path / "w600k_r50.onnx").write_bytes(b"")
    with pytest.raises(
        ImproperlyConfigured, match="w600k_r50.onnx .*is empty or not an ONNX model"
    ):
        InsightFaceEngine(tmp_path)


def test_insightface_wants_exactly_one_detector_and_one_recognizer(tmp_path: Path) -> None:
    _recognition_model(tmp_path / "w600k_r50.onnx")
    with pytest.raises(ImproperlyConfigured, match=r"has 0 detection models \(none\)"):
        InsightFaceEngine(tmp_path)

    _detection_model(tmp_path / "det_10g.onnx")
    _recognition_model(tmp_path / "glintr100.onnx")
    with pytest.raises(
        ImproperlyConfigured, match=r"has 2 recognition models \(glintr100.onnx, w600k_r50.onnx\)"
    ):
        InsightFaceEngine(tmp_path)
