"""Measure a face engine's match/non-match error rates on faces that ship in installed packages.

    python -m cameos.faces.calibration [--engine dlib] [--augmentations 40] [--seed 7]
    python -m cameos.faces.calibration --engine insightface --model-dir /models/buffalo_l

Identities: the six people of insightface's t1.jpg, scikit-image's astronaut and insightface's
Tom Hanks crop (the only face images of usable size in the installed wheels: scikit-image's
cameraman is too small and side-on for HOG, its `lfw_subset` is 25 px and unlabelled, and
insightface's mask_*.jpg are masks). Each identity is seen as its source crop plus random
augmentations (crop and offset, scale, in-plane rotation, mirror, brightness/contrast, blur,
JPEG quality, greyscale, usually several at once). Genuine pairs: two images of one identity;
impostor pairs: images of two identities. Each image is embedded once.

The figures bound what an engine does on *image degradations*; they say nothing about pose,
age, lighting or make-up changes, and with 8 identities the impostor pairs come from only 28
distinct pairs of people, so they are strongly correlated: "FMR 0" means "none of these 28
pairs of people", not 1 in 10,000 strangers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cameos.faces.base import FaceEmbedding, FaceEngine

FMR_TARGET = 1e-3
DEFAULT_AUGMENTATIONS = 40
DEFAULT_SEED = 7


def insightface_image(name: str) -> np.ndarray:
    """An image of insightface's wheel (`insightface/data/images/<name>`) as RGB uint8.

    Found without importing insightface, which would load onnxruntime.
    """
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the insightface package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "images" / name
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@cache
def group_photo() -> np.ndarray:
    """insightface's t1.jpg: six people, 1280x886. Read-only, shared."""
    return _read_only(insightface_image("t1.jpg"))


@cache
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), 512x512, one face. Read-only, shared."""
    from skimage import data

    return _read_only(np.ascontiguousarray(data.astronaut()))


@cache
def tom_hanks() -> np.ndarray:
    """insightface's Tom_Hanks_54745.png: an aligned 112x112 face crop. Read-only, shared."""
    return _read_only(insightface_image("Tom_Hanks_54745.png"))


@dataclass(frozen=True)
class FaceSource:
    """Where one identity's face is in a package image: its centre and width, in pixels."""

    label: str
    load: Callable[[], np.ndarray]
    centre: tuple[float, float]
    size: float


# The six faces of t1.jpg from left to right, as dlib's HOG boxes them (centre, width). The
# second from the right is turned ~45 degrees and sits at the edge of what HOG detects.
GROUP_PHOTO_FACES = (
    ((117.5, 336.5), 105.0),
    ((319.0, 223.0), 88.0),
    ((515.0, 362.5), 126.0),
    ((786.0, 417.5), 104.0),
    ((935.5, 141.0), 105.0),
    ((1166.0, 336.5), 104.0),
)

FACE_SOURCES = (
    *(
        FaceSource(f"t1-person-{index}", group_photo, centre, size)
        for index, (centre, size) in enumerate(GROUP_PHOTO_FACES)
    ),
    FaceSource("astronaut", astronaut, (224.0, 124.0), 100.0),
    FaceSource("tom-hanks", tom_hanks, (54.0, 71.0), 78.0),
)


@dataclass(frozen=True)
class Augmentation:
    """One random change of viewing conditions; the identity is `Augmentation()`."""

    scale: float = 1.0  # face width in the output / in the source
    rotation: float = 0.0  # degrees, counter-clockwise
    shift: tuple[float, float] = (0.0, 0.0)  # face centre offset from the output's, in face widths
    context: tuple[float, float] = (2.6, 2.6)  # output width and height, in face widths
    mirror: bool = False
    gain: float = 1.0
    offset: float = 0.0
    blur: float = 0.0  # Gaussian sigma, in face widths
    jpeg_quality: int | None = None
    greyscale: bool = False

    def describe(self) -> str:
        parts = [f"scale {self.scale:.2f}"]
        if self.rotation:
            parts.append(f"rotate {self.rotation:+.0f}deg")
        if self.mirror:
            parts.append("mirror")
        if self.gain != 1.0 or self.offset:
            parts.append(f"light x{self.gain:.2f}{self.offset:+.0f}")
        if self.blur:
            parts.append(f"blur {self.blur:.3f}")
        if self.jpeg_quality is not None:
            parts.append(f"jpeg q{self.jpeg_quality}")
        if self.greyscale:
            parts.append("grey")
        return ", ".join(parts)


def random_augmentation(rng: np.random.Generator) -> Augmentation:
    """A random mix: each change is applied with its own probability, so most combine several."""
    return Augmentation(
        scale=float(np.exp(rng.uniform(np.log(0.6), np.log(2.0)))),
        rotation=float(rng.uniform(-15, 15)) if rng.random() < 0.5 else 0.0,
        shift=(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3))),
        context=(float(rng.uniform(2.2, 3.4)), float(rng.uniform(2.2, 3.4))),
        mirror=bool(rng.random() < 0.25),
        gain=float(rng.uniform(0.6, 1.4)) if rng.random() < 0.6 else 1.0,
        offset=float(rng.uniform(-20, 20)) if rng.random() < 0.6 else 0.0,
        blur=float(rng.uniform(0.005, 0.02)) if rng.random() < 0.4 else 0.0,
        jpeg_quality=int(rng.integers(20, 91)) if rng.random() < 0.5 else None,
        greyscale=bool(rng.random() < 0.1),
    )


def augment(
    source: FaceSource, augmentation: Augmentation
) -> tuple[np.ndarray, tuple[float, float], float]:
    """The augmented image, where its face's centre should be, and the face's expected width."""
    image = source.load()
    face_size = source.size * augmentation.scale
    width = max(16, round(augmentation.context[0] * face_size))
    height = max(16, round(augmentation.context[1] * face_size))
    target_x = width / 2 + augmentation.shift[0] * face_size
    target_y = height / 2 + augmentation.shift[1] * face_size
    matrix = cv2.getRotationMatrix2D(source.centre, augmentation.rotation, augmentation.scale)
    matrix[0, 2] += target_x - source.centre[0]
    matrix[1, 2] += target_y - source.centre[1]
    # Replicated borders, not reflected ones: a reflection would add a mirrored second face.
    output = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if augmentation.mirror:
        output = np.ascontiguousarray(output[:, ::-1])
        target_x = width - 1 - target_x
    if augmentation.gain != 1.0 or augmentation.offset:
        lit = output.astype(np.float32) * augmentation.gain + augmentation.offset
        output = np.clip(lit, 0, 255).astype(np.uint8)
    if augmentation.blur:
        output = cv2.GaussianBlur(output, (0, 0), augmentation.blur * face_size)
    if augmentation.greyscale:
        output = np.repeat(cv2.cvtColor(output, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    if augmentation.jpeg_quality is not None:
        ok, encoded = cv2.imencode(
            ".jpg",
            cv2.cvtColor(output, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, augmentation.jpeg_quality],
        )
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise RuntimeError(f"JPEG round trip failed at quality {augmentation.jpeg_quality}")
        output = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(output), (target_x, target_y), face_size


@dataclass(frozen=True)
class Sample:
    label: str
    augmentation: Augmentation
    embedding: FaceEmbedding = field(repr=False)


def embed_face_near(
    engine: FaceEngine, image: np.ndarray, centre: tuple[float, float], size: float
) -> FaceEmbedding | None:
    """The embedding of the detected face nearest `centre` (within half a face), else None."""
    best = None
    best_distance = size / 2
    for face in engine.detect(image):
        box_centre = ((face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2)
        distance = float(np.hypot(box_centre[0] - centre[0], box_centre[1] - centre[1]))
        if distance <= best_distance:
            best, best_distance = face, distance
    return None if best is None else engine.embed(image, best)


def collect_samples(
    engine: FaceEngine,
    *,
    augmentations_per_identity: int = DEFAULT_AUGMENTATIONS,
    seed: int = DEFAULT_SEED,
    sources: Sequence[FaceSource] = FACE_SOURCES,
) -> tuple[list[Sample], dict[str, int]]:
    """Every identity's source crop and its augmentations, embedded; and, per identity, how
    many images had no face where one was expected."""
    rng = np.random.default_rng(seed)
    samples = []
    undetected: dict[str, int] = {}
    for source in sources:
        augmentations = [Augmentation()] + [
            random_augmentation(rng) for _ in range(augmentations_per_identity)
        ]
        for augmentation in augmentations:
            image, centre, size = augment(source, augmentation)
            embedding = embed_face_near(engine, image, centre, size)
            if embedding is None:
                undetected[source.label] = undetected.get(source.label, 0) + 1
            else:
                samples.append(Sample(source.label, augmentation, embedding))
    return samples, undetected


@dataclass(frozen=True)
class Pair:
    distance: float
    first: Sample
    second: Sample


@dataclass(frozen=True)
class CalibrationResult:
    engine_id: str
    identities: int
    images: int
    undetected: dict[str, int]  # identity label -> images where no face was found
    genuine: list[Pair] = field(repr=False)
    impostor: list[Pair] = field(repr=False)
    match_threshold: float
    uncertain_threshold: float

    @property
    def genuine_distances(self) -> np.ndarray:
        return np.array([pair.distance for pair in self.genuine])

    @property
    def impostor_distances(self) -> np.ndarray:
        return np.array([pair.distance for pair in self.impostor])

    def error_rates(self, threshold: float) -> tuple[float, float]:
        """(FMR, FNMR) when pairs at or below `threshold` are called a match."""
        return error_rates(self.genuine_distances, self.impostor_distances, threshold)


def error_rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at `threshold`: impostors at or below it, genuine pairs above it."""
    false_match = float(np.mean(impostor <= threshold)) if impostor.size else 0.0
    false_non_match = float(np.mean(genuine > threshold)) if genuine.size else 0.0
    return false_match, false_non_match


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, its threshold). Separable distributions give 0 at the middle of the gap."""
    if genuine.max() < impostor.min():
        return 0.0, float((genuine.max() + impostor.min()) / 2)
    best = (float("inf"), 0.0, 0.0)
    for threshold in np.unique(np.concatenate([genuine, impostor])):
        false_match, false_non_match = error_rates(genuine, impostor, float(threshold))
        gap = abs(false_match - false_non_match)
        if gap < best[0]:
            best = (gap, (false_match + false_non_match) / 2, float(threshold))
    return best[1], best[2]


def threshold_at_fmr(impostor: np.ndarray, target: float) -> float:
    """The largest threshold whose FMR is at most `target` (just below an impostor distance).

    With fewer than 1/target impostor pairs that is just below the closest impostor (FMR 0).
    """
    ordered = np.sort(impostor)
    allowed = int(np.floor(target * ordered.size))
    return float(np.nextafter(ordered[allowed], -np.inf))


def measure(
    engine: FaceEngine,
    *,
    augmentations_per_identity: int = DEFAULT_AUGMENTATIONS,
    seed: int = DEFAULT_SEED,
    sources: Sequence[FaceSource] = FACE_SOURCES,
) -> CalibrationResult:
    """Embed every source and augmentation once, then score all genuine and impostor pairs."""
    samples, undetected = collect_samples(
        engine, augmentations_per_identity=augmentations_per_identity, seed=seed, sources=sources
    )
    genuine: list[Pair] = []
    impostor: list[Pair] = []
    for index, first in enumerate(samples):
        for second in samples[index + 1 :]:
            pair = Pair(engine.distance(first.embedding, second.embedding), first, second)
            (genuine if first.label == second.label else impostor).append(pair)
    return CalibrationResult(
        engine_id=engine.id,
        identities=len({sample.label for sample in samples}),
        images=len(samples),
        undetected=undetected,
        genuine=genuine,
        impostor=impostor,
        match_threshold=engine.match_threshold,
        uncertain_threshold=engine.uncertain_threshold,
    )


def report(result: CalibrationResult) -> str:
    genuine = result.genuine_distances
    impostor = result.impostor_distances
    eer, eer_threshold = equal_error_rate(genuine, impostor)
    fmr_threshold = threshold_at_fmr(impostor, FMR_TARGET)
    _, fnmr_at_target = result.error_rates(fmr_threshold)
    match_fmr, match_fnmr = result.error_rates(result.match_threshold)
    uncertain_fmr, uncertain_fnmr = result.error_rates(result.uncertain_threshold)
    worst_genuine = sorted(result.genuine, key=lambda pair: pair.distance)[-3:][::-1]
    closest_impostors = sorted(result.impostor, key=lambda pair: pair.distance)[:3]
    missed = ", ".join(f"{label} {count}" for label, count in result.undetected.items()) or "none"
    person_pairs = result.identities * (result.identities - 1) // 2
    lines = [
        f"engine {result.engine_id}",
        f"identities {result.identities}, images embedded {result.images} "
        f"(no face found in {sum(result.undetected.values())} more: {missed}), "
        f"pairs: {len(genuine)} genuine, {len(impostor)} impostor",
        f"genuine distances: median {np.median(genuine):.3f}, 99th percentile "
        f"{np.percentile(genuine, 99):.3f}, max {genuine.max():.3f}",
        f"impostor distances: min {impostor.min():.3f}, 1st percentile "
        f"{np.percentile(impostor, 1):.3f}, median {np.median(impostor):.3f}",
        f"EER {eer:.2%} at {eer_threshold:.3f}",
        f"FNMR {fnmr_at_target:.2%} at FMR <= {FMR_TARGET:g} (threshold {fmr_threshold:.3f})",
        f"at match_threshold {result.match_threshold}: FMR {match_fmr:.2%}, FNMR {match_fnmr:.2%}",
        f"at uncertain_threshold {result.uncertain_threshold}: FMR {uncertain_fmr:.2%}, "
        f"FNMR {uncertain_fnmr:.2%}",
        "threshold: FMR / FNMR",
        *(
            f"  {threshold:.3f}: {fmr:.3%} / {fnmr:.3%}"
            for threshold, (fmr, fnmr) in _threshold_table(result)
        ),
        "farthest genuine pairs:",
        *(_describe(pair) for pair in worst_genuine),
        "closest impostor pairs:",
        *(_describe(pair) for pair in closest_impostors),
        f"limits: {result.identities} identities, so the impostor pairs come from only "
        f"{person_pairs} pairs of people and are strongly correlated. FMR 0 here means none of "
        f"those {person_pairs} pairs of people was confused, which alone bounds the real FMR "
        f"only below ~{3 / person_pairs:.0%} (rule of three): the figures rank thresholds, they "
        "do not certify an FMR of 1e-3. The augmentations model image degradations, not pose, "
        "age, expression or lighting changes.",
    ]
    return "\n".join(lines)


def _threshold_table(result: CalibrationResult) -> list[tuple[float, tuple[float, float]]]:
    """Error rates at evenly spaced thresholds across the band where the two distributions meet."""
    low = float(np.percentile(result.genuine_distances, 90))
    high = float(np.percentile(result.impostor_distances, 1))
    low, high = min(low, high), max(low, high)
    return [
        (float(threshold), result.error_rates(float(threshold)))
        for threshold in np.linspace(low, high, 7)
    ]


def _describe(pair: Pair) -> str:
    return (
        f"  {pair.distance:.3f}  {pair.first.label} [{pair.first.augmentation.describe()}]"
        f" / {pair.second.label} [{pair.second.augmentation.describe()}]"
    )


def _read_only(image: np.ndarray) -> np.ndarray:
    image.flags.writeable = False
    return image


def _engine(name: str, model_dir: str) -> FaceEngine:
    # Built directly, not through get_engine: this tool runs without Django settings.
    if name == "dlib":
        from cameos.faces.dlib_engine import DlibEngine

        return DlibEngine()
    from cameos.faces.insightface_engine import InsightFaceEngine

    return InsightFaceEngine(model_dir)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cameos.faces.calibration")
    parser.add_argument("--engine", choices=("dlib", "insightface"), default="dlib")
    parser.add_argument(
        "--model-dir",
        default=os.environ.get("FACE_MODEL_DIR", ""),
        help="insightface's model folder (default: $FACE_MODEL_DIR)",
    )
    parser.add_argument("--augmentations", type=int, default=DEFAULT_AUGMENTATIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    engine = _engine(arguments.engine, arguments.model_dir)
    result = measure(
        engine, augmentations_per_identity=arguments.augmentations, seed=arguments.seed
    )
    print(report(result))
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
