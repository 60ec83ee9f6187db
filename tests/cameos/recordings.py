"""Registration recordings built from real media for the liveness tests and benchmark.

A face photo that ships in a package (scikit-image's astronaut, or a person of insightface's
t1.jpg) is either mapped onto a 3D head (an ellipsoid, ray-cast orthographically and rotated
about its vertical axis, so a turn really shows the face's other side and its parallax) or
moved as a flat printed photo (a homography: shift, scale, in-plane rotation, tilt). It is
composited on a textured room-like background, the challenge digits are spoken one at a time by
eSpeak NG with a microphone-like noise floor, and PyAV encodes H.264 + AAC to MP4.

`build_recording` caches each clip under a directory, keyed by its parameters: a clip takes
one to several seconds to build.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import io
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np
import skimage.data
from scipy.signal import resample_poly

from generation.media import speech

Motion = Literal["head", "flat", "still", "nobody"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
AUDIO_RATE = 48_000
# Increase when the rendering changes, so stale cached clips are not reused.
BUILDER_VERSION = 5


@dataclass(frozen=True)
class FaceSource:
    name: str
    # The head (hair to chin, ear to ear) in the source image: left, top, right, bottom.
    head_box: tuple[int, int, int, int]
    # Eye centres' x (image left, right), eye level, nose x, nose tip y, nose base y: the relief
    # of the 3D head. None: a plain ellipsoid.
    features: tuple[float, float, float, float, float, float] | None = None


ASTRONAUT = FaceSource("astronaut", (148, 8, 302, 200), (203.5, 246.5, 103, 224, 126, 135))
# The man in the middle of t1.jpg: his head is rolled and turned a little to his left.
T1_DAVID = FaceSource("t1-david", (440, 225, 595, 435), (492, 539.5, 327, 509, 360, 372))


@dataclass(frozen=True)
class RecordingSpec:
    digits: str = "471"
    turns: tuple[str, ...] = ("left", "right")
    face: FaceSource = ASTRONAUT
    # "head": a 3D head that turns; "flat": the same photo moved as a plane (slid, scaled,
    # rotated in-plane and tilted where the turns would be); "still": a photo that never moves;
    # "nobody": the empty room.
    motion: Motion = "head"
    second_face: bool = False
    # Another person's head takes over halfway through (same turns, same voice).
    swapped_face: FaceSource | None = None
    # Flipped left to right, as a selfie preview shows it (the turns are still the person's).
    mirrored: bool = False
    seconds: float = 4.0
    width: int = 640
    height: int = 360
    fps: int = 15
    turn_degrees: float = 35.0
    # How far a flat photo is tilted about its vertical axis where the turns would be.
    tilt_degrees: float = 30.0
    voice: str = "en-us"
    rate_wpm: int = 150
    noise_snr_db: float = 40.0
    # The head's height as a fraction of the frame's short side (a selfie at arm's length).
    head_fraction: float = 0.55
    seed: int = 1


def build_recording(cache_dir: Path, spec: RecordingSpec) -> Path:
    """The MP4 of `spec` in `cache_dir`, built on first use."""
    key = hashlib.sha256(f"{BUILDER_VERSION}:{spec!r}".encode()).hexdigest()[:16]
    path = cache_dir / f"recording-{key}.mp4"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        encode_recording(partial, spec)
        partial.replace(path)
    return path


def encode_recording(path: Path, spec: RecordingSpec) -> None:
    audio = spoken_digits(spec)
    frame_count = round(spec.seconds * spec.fps)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=spec.fps)
        video.width = spec.width
        video.height = spec.height
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20"}
        sound = container.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        for index, image in enumerate(render_frames(spec, frame_count)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        audio_frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
        audio_frame.sample_rate = AUDIO_RATE
        container.mux(sound.encode(audio_frame))
        container.mux(sound.encode())


def spoken_digits(spec: RecordingSpec) -> np.ndarray:
    """The digits spoken one at a time, evenly spread over the clip, with a noise floor."""
    return speak_digits(
        spec.digits,
        seconds=spec.seconds,
        voice=spec.voice,
        rate_wpm=spec.rate_wpm,
        noise_snr_db=spec.noise_snr_db,
        seed=spec.seed,
        sample_rate=AUDIO_RATE,
    )


def speak_digits(
    digits: str,
    *,
    seconds: float,
    voice: str = "en-us",
    rate_wpm: int = 150,
    noise_snr_db: float | None = 40.0,
    seed: int = 1,
    sample_rate: int = 16_000,
) -> np.ndarray:
    """`digits` spoken one word at a time in `seconds` of float32 mono audio at `sample_rate`.

    The noise floor (white noise `noise_snr_db` below the voiced level) stands in for a
    microphone's; None leaves digital silence between the words.
    """
    return speak_words(
        [DIGIT_WORDS[int(digit)] for digit in digits],
        seconds=seconds,
        voice=voice,
        rate_wpm=rate_wpm,
        noise_snr_db=noise_snr_db,
        seed=seed,
        sample_rate=sample_rate,
    )


def speak_words(
    words: list[str],
    *,
    seconds: float,
    voice: str = "en-us",
    rate_wpm: int = 150,
    noise_snr_db: float | None = 40.0,
    seed: int = 1,
    sample_rate: int = 16_000,
) -> np.ndarray:
    """Like `speak_digits`, for any words ("oh" for zero, say)."""
    total = np.zeros(round(seconds * sample_rate), dtype=np.float32)
    spoken = [_spoken_word(word, voice, rate_wpm, sample_rate) for word in words]
    # Words start at evenly spaced times after a short lead-in, like a user reading a prompt.
    lead_in = 0.4 * sample_rate
    slot = (total.size - lead_in) / max(1, len(spoken))
    for index, word in enumerate(spoken):
        start = round(lead_in + index * slot)
        end = min(total.size, start + word.size)
        total[start:end] += word[: end - start]
    if noise_snr_db is not None:
        voiced = np.concatenate(spoken)
        voiced = voiced[np.abs(voiced) > 0.02]
        level = float(np.sqrt(np.mean(np.square(voiced)))) if voiced.size else 0.1
        noise_level = level / (10 ** (noise_snr_db / 20))
        total += np.random.default_rng(seed).normal(0.0, noise_level, total.size).astype(np.float32)
    return np.clip(total, -1.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=256)
def _spoken_word(word: str, voice: str, rate_wpm: int, sample_rate: int) -> np.ndarray:
    samples, rate = speech.synthesize(f"{word}.", voice=voice, rate_wpm=rate_wpm)
    divisor = math.gcd(sample_rate, rate)
    return resample_poly(samples, sample_rate // divisor, rate // divisor).astype(np.float32)


# --- Pictures -------------------------------------------------------------------------------


def face_photo(source: FaceSource) -> np.ndarray:
    """The source's whole image, RGB uint8."""
    if source.name == "astronaut":
        return skimage.data.astronaut()
    # Located without importing insightface, whose import is slow and not needed here.
    spec = importlib.util.find_spec("insightface")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "data" / "images" / "t1.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class EllipsoidHead:
    """A photo's head mapped onto an ellipsoid with a nose, rendered at any yaw (orthographic).

    The photo is projected onto the surface along the head's own depth axis. When the source
    gives the eyes and nose, the surface carries a nose ridge and eye sockets of human
    proportions (tip ~0.45 of the eye distance in front of the eyes): without them a turn moves
    the nose no more than the eyes, unlike on a real face. Rendering splats the surface at 3x
    horizontal density with a depth buffer, so the nose hides the far cheek as it should.
    Positive yaw is the person's left: the nose moves towards the image's right edge.
    """

    SAMPLES_PER_PIXEL = 3

    def __init__(self, source: FaceSource, height_px: int) -> None:
        left, top, right, bottom = source.head_box
        crop = face_photo(source)[top:bottom, left:right]
        self.half_height = height_px / 2
        self.half_width = self.half_height * crop.shape[1] / crop.shape[0]
        # A head is deeper front to back than it is wide.
        self.half_depth = 1.15 * self.half_width
        texture_size = (round(2 * self.half_width), round(2 * self.half_height))
        self.texture = cv2.resize(crop, texture_size, interpolation=cv2.INTER_AREA)
        self.hair = np.median(crop[: max(1, crop.shape[0] // 8)].reshape(-1, 3), axis=0)
        self.extent = math.ceil(max(self.half_width, self.half_depth)) + 2
        rows = math.ceil(self.half_height) + 1
        self.rows = np.arange(-rows, rows + 1, dtype=np.float32)
        step = 1 / self.SAMPLES_PER_PIXEL
        head_xs = np.arange(-self.half_width, self.half_width + step, step, dtype=np.float32)
        self.head_x, self.head_y = np.meshgrid(head_xs, self.rows)
        a, b, c = self.half_width, self.half_height, self.half_depth
        radial = 1 - (self.head_x / a) ** 2 - (self.head_y / b) ** 2
        self.on_head = radial > 0
        shell = c * np.sqrt(np.maximum(radial, 0))
        self.front = shell + self._relief(source, crop.shape[1], crop.shape[0])
        self.back = -shell
        self.front_normal = _height_field_normal(self.front, step)
        back_normal = _height_field_normal(self.back, step)
        self.back_normal = (-back_normal[0], -back_normal[1], -back_normal[2])

    def _relief(self, source: FaceSource, crop_width: int, crop_height: int) -> np.ndarray:
        if source.features is None:
            return np.zeros_like(self.head_x)
        left, top = source.head_box[:2]
        eye_left_x, eye_right_x, eye_y, nose_x, tip_y, base_y = source.features
        to_x = 2 * self.half_width / crop_width
        to_y = 2 * self.half_height / crop_height

        def x_of(value: float) -> float:
            return (value - left) * to_x - self.half_width

        def y_of(value: float) -> float:
            return (value - top) * to_y - self.half_height

        eye_distance = (eye_right_x - eye_left_x) * to_x
        eyes = (x_of(eye_left_x), x_of(eye_right_x))
        eye_level, tip, base, nose = y_of(eye_y), y_of(tip_y), y_of(base_y), x_of(nose_x)
        x, y = self.head_x, self.head_y
        # Height along the nose: rising from the eyes to the tip, a little less at its base,
        # then falling to the lip.
        profile = np.interp(
            y,
            [eye_level, tip, base, base + 0.2 * eye_distance],
            [0.0, 1.0, 0.7, 0.0],
            left=0.0,
            right=0.0,
        )
        widening = np.clip((y - eye_level) / max(1.0, base - eye_level), 0, 1)
        width = eye_distance * (0.1 + 0.1 * widening)
        ridge = 0.45 * eye_distance * profile * np.exp(-0.5 * ((x - nose) / width) ** 2)
        sockets = sum(
            np.exp(-0.5 * (((x - eye) ** 2 + (y - eye_level) ** 2) / (0.22 * eye_distance) ** 2))
            for eye in eyes
        )
        return (ridge - 0.1 * eye_distance * sockets).astype(np.float32)

    @functools.lru_cache(maxsize=512)  # noqa: B019 (a head lives as long as its clip)
    def render(self, yaw_degrees: float) -> tuple[np.ndarray, np.ndarray]:
        """RGB float32 sprite and its alpha; the sprite's centre is the head's centre."""
        sin, cos = math.sin(math.radians(yaw_degrees)), math.cos(math.radians(yaw_degrees))
        width = 2 * self.extent + 1
        height = self.rows.size
        row_index = np.broadcast_to(np.arange(height)[:, None], self.head_x.shape)
        pixel_parts, depth_parts, source_parts, light_parts = [], [], [], []
        for half, surface, normal in (
            (0, self.front, self.front_normal),
            (1, self.back, self.back_normal),
        ):
            world_x = cos * self.head_x + sin * surface
            world_z = -sin * self.head_x + cos * surface
            column = np.rint(world_x + self.extent).astype(np.int64)
            normal_z = -sin * normal[0] + cos * normal[2]
            facing = normal_z > -0.05
            keep = self.on_head & facing & (column >= 0) & (column < width)
            pixel_parts.append((row_index * width + column)[keep])
            depth_parts.append(world_z[keep])
            sample = np.flatnonzero(keep.reshape(-1)) * 2 + half
            source_parts.append(sample)
            light_parts.append((-0.25 * normal[1] + 0.97 * normal_z)[keep])
        pixels = np.concatenate(pixel_parts)
        depths = np.concatenate(depth_parts)
        samples = np.concatenate(source_parts)
        lights = np.concatenate(light_parts)
        # The nearest sample of each pixel: sort by pixel, then depth (folded into the key's
        # fraction: one float sort is much faster than a two-key lexsort), keep each group's last.
        span = float(depths.max() - depths.min()) + 1e-6
        order = np.argsort(pixels + 0.999 * (depths - depths.min()) / span, kind="stable")
        pixels, samples, lights = pixels[order], samples[order], lights[order]
        last = np.r_[pixels[1:] != pixels[:-1], True]
        pixels, samples, lights = pixels[last], samples[last], lights[last]
        map_x = np.full(height * width, -10.0, np.float32)
        map_y = np.full(height * width, -10.0, np.float32)
        shade = np.zeros(height * width, np.float32)
        is_back = np.zeros(height * width, bool)
        flat_index = samples // 2
        texture_height, texture_width = self.texture.shape[:2]
        map_x[pixels] = (self.head_x.reshape(-1)[flat_index] + self.half_width) / (
            2 * self.half_width
        ) * texture_width - 0.5
        map_y[pixels] = (self.head_y.reshape(-1)[flat_index] + self.half_height) / (
            2 * self.half_height
        ) * texture_height - 0.5
        shade[pixels] = 0.72 + 0.28 * np.clip(lights, 0, 1)
        is_back[pixels] = samples % 2 == 1
        filled = np.zeros(height * width, np.float32)
        filled[pixels] = 1.0
        shape = (height, width)
        colour = cv2.remap(
            self.texture,
            map_x.reshape(shape),
            map_y.reshape(shape),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        ).astype(np.float32)
        colour[is_back.reshape(shape)] = self.hair
        colour *= shade.reshape(shape)[..., None]
        # The splatting leaves small gaps where the surface grazes the view (the rim between
        # the face and the back of the head): fill them inside the ellipsoid's silhouette.
        half_extent = math.sqrt((self.half_width * cos) ** 2 + (self.half_depth * sin) ** 2)
        columns = np.arange(width, dtype=np.float32) - self.extent
        silhouette = (columns[None, :] / half_extent) ** 2 + (
            self.rows[:, None] / self.half_height
        ) ** 2 <= 1
        gaps = silhouette & (filled.reshape(shape) == 0)
        if gaps.any():
            patched = cv2.inpaint(
                np.clip(colour, 0, 255).astype(np.uint8),
                gaps.astype(np.uint8),
                2,
                cv2.INPAINT_TELEA,
            )
            colour[gaps] = patched[gaps]
        alpha = np.maximum(filled.reshape(shape), silhouette.astype(np.float32))
        return colour, cv2.GaussianBlur(alpha, (3, 3), 0)


def _height_field_normal(
    surface: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normals (x, y, z) of z = surface(x, y), pointing to +z."""
    slope_y, slope_x = np.gradient(surface, 1.0, step)
    slope_x = np.clip(slope_x, -20, 20)
    slope_y = np.clip(slope_y, -20, 20)
    length = np.sqrt(slope_x**2 + slope_y**2 + 1)
    return -slope_x / length, -slope_y / length, 1 / length


class FlatPhoto:
    """A printed photo of the head (with some background and a white border) as a plane."""

    def __init__(self, source: FaceSource, height_px: int) -> None:
        left, top, right, bottom = source.head_box
        photo = face_photo(source)
        margin_x, margin_y = (right - left) // 5, (bottom - top) // 6
        crop = photo[
            max(0, top - margin_y) : bottom + margin_y, max(0, left - margin_x) : right + margin_x
        ]
        # The head keeps the same size as the 3D head's: scale by the head box, not the card.
        scale = height_px / (bottom - top)
        card = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        border = max(2, round(0.04 * card.shape[1]))
        self.card = cv2.copyMakeBorder(
            card, border, border, border, border, cv2.BORDER_CONSTANT, value=(245, 245, 240)
        )

    def warp(
        self,
        size: tuple[int, int],
        centre: tuple[float, float],
        *,
        scale: float = 1.0,
        roll_degrees: float = 0.0,
        tilt_degrees: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The card as it appears in a `size` (width, height) frame, and its alpha."""
        height, width = self.card.shape[:2]
        to_origin = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]], np.float64)
        tilt = math.radians(tilt_degrees)
        # Rotating the card about its vertical axis, seen from a camera at focal length ~1.5x
        # the card's height: the near edge grows, the far edge shrinks.
        focal = 1.5 * height
        perspective = np.array(
            [[math.cos(tilt), 0, 0], [0, 1, 0], [-math.sin(tilt) / focal, 0, 1]], np.float64
        )
        roll = math.radians(roll_degrees)
        rotate = np.array(
            [
                [scale * math.cos(roll), -scale * math.sin(roll), centre[0]],
                [scale * math.sin(roll), scale * math.cos(roll), centre[1]],
                [0, 0, 1],
            ],
            np.float64,
        )
        homography = rotate @ perspective @ to_origin
        colour = cv2.warpPerspective(
            self.card, homography, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
        ).astype(np.float32)
        alpha = cv2.warpPerspective(
            np.ones(self.card.shape[:2], np.float32), homography, size, flags=cv2.INTER_LINEAR
        )
        return colour, alpha


@functools.lru_cache(maxsize=8)
def background(width: int, height: int, seed: int) -> np.ndarray:
    """A room-like textured background: a warm gradient, soft blotches and a few shelves."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            150 + 40 * xs / width,
            135 + 20 * ys / height,
            115 + 30 * (1 - xs / width),
        ],
        axis=-1,
    )
    blotches = cv2.resize(
        rng.normal(0, 18, (9, 16, 3)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    image = base + blotches + rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    for _ in range(6):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 12, width // 4)), int(rng.integers(4, height // 10))
        colour = tuple(float(value) for value in rng.integers(40, 200, 3))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, thickness=-1)
    return np.clip(image, 0, 255).astype(np.float32)


def turn_schedule(spec: RecordingSpec, time: float) -> float:
    """The signed yaw (degrees, positive = the person's left) at `time`.

    The head faces the camera for the first 0.6 s, then makes each turn in its own slot: out
    (0.45 s), hold, back (0.45 s), then rests facing the camera.
    """
    if not spec.turns:
        return 0.0
    start, end = 0.6, spec.seconds - 0.3
    slot = (end - start) / len(spec.turns)
    index = int((time - start) // slot) if time >= start else -1
    if not 0 <= index < len(spec.turns):
        return 0.0
    phase = (time - start - index * slot) / slot
    direction = 1.0 if spec.turns[index] == "left" else -1.0
    # Smooth out over the first 30% of the slot, hold, back over the next 30%, rest.
    if phase < 0.3:
        amount = 0.5 - 0.5 * math.cos(math.pi * phase / 0.3)
    elif phase < 0.5:
        amount = 1.0
    elif phase < 0.8:
        amount = 0.5 + 0.5 * math.cos(math.pi * (phase - 0.5) / 0.3)
    else:
        amount = 0.0
    return direction * spec.turn_degrees * amount


def render_frames(spec: RecordingSpec, frame_count: int) -> Iterator[np.ndarray]:
    """The clip's frames one by one (a 720p clip held whole would take ~400 MB)."""
    size = (spec.width, spec.height)
    head_height = round(spec.head_fraction * min(spec.width, spec.height))
    room = background(spec.width, spec.height, spec.seed)
    room_pixels = np.clip(room, 0, 255).astype(np.uint8)
    centre = (spec.width / 2, spec.height * 0.47)
    head = EllipsoidHead(spec.face, head_height) if spec.motion == "head" else None
    photo = FlatPhoto(spec.face, head_height) if spec.motion in ("flat", "still") else None
    swapped = (
        EllipsoidHead(spec.swapped_face, head_height)
        if spec.swapped_face is not None and head is not None
        else None
    )
    second = EllipsoidHead(T1_DAVID, round(head_height * 0.8)) if spec.second_face else None
    for index in range(frame_count):
        time = index / spec.fps
        image = room_pixels.copy()
        if second is not None:
            # Standing behind and to one side, swaying a little.
            sway = 3 * math.sin(2 * math.pi * 0.3 * time)
            _paste(image, *second.render(round(sway)), (spec.width * 0.2, spec.height * 0.42))
        if head is not None:
            # A live person is never perfectly still: a little sway and breathing.
            yaw = turn_schedule(spec, time) + 1.5 * math.sin(2 * math.pi * 0.5 * time)
            offset_x = 0.01 * spec.width * math.sin(2 * math.pi * 0.35 * time)
            offset_y = 0.008 * spec.height * math.sin(2 * math.pi * 0.27 * time + 1)
            _draw_shoulders(image, (centre[0] + offset_x, centre[1]), head_height)
            current = swapped if swapped is not None and time >= spec.seconds / 2 else head
            colour, alpha = current.render(float(round(yaw)))
            _paste(image, colour, alpha, (centre[0] + offset_x, centre[1] + offset_y))
        elif photo is not None:
            if spec.motion == "still":
                colour, alpha = photo.warp(size, centre)
            else:
                colour, alpha = photo.warp(size, **_flat_motion(spec, time))
            blended = room * (1 - alpha[..., None]) + colour * alpha[..., None]
            image = np.clip(blended, 0, 255).astype(np.uint8)
        yield np.ascontiguousarray(image[:, ::-1]) if spec.mirrored else image


def _flat_motion(spec: RecordingSpec, time: float) -> dict[str, Any]:
    """How an attacker moves a photo: slide, a little zoom and roll, tilts where turns go."""
    progress = time / spec.seconds
    tilt = turn_schedule(dataclasses.replace(spec, turn_degrees=spec.tilt_degrees), time)
    return {
        "centre": (
            spec.width * (0.42 + 0.16 * progress),
            spec.height * (0.47 + 0.04 * math.sin(2 * math.pi * progress)),
        ),
        "scale": 1.0 + 0.12 * progress,
        "roll_degrees": 8.0 * math.sin(2 * math.pi * 0.4 * time),
        "tilt_degrees": tilt,
    }


def _paste(
    image: np.ndarray, colour: np.ndarray, alpha: np.ndarray, centre: tuple[float, float]
) -> None:
    """Blend a sprite into `image` (uint8, in place) with its centre at `centre`."""
    height, width = alpha.shape
    left = round(centre[0] - width / 2)
    top = round(centre[1] - height / 2)
    image_height, image_width = image.shape[:2]
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(image_width, left + width), min(image_height, top + height)
    if x0 >= x1 or y0 >= y1:
        return
    sprite = colour[y0 - top : y1 - top, x0 - left : x1 - left]
    weight = alpha[y0 - top : y1 - top, x0 - left : x1 - left, None]
    region = image[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1 - weight) + sprite * weight
    image[y0:y1, x0:x1] = np.clip(blended, 0, 255).astype(np.uint8)


def _draw_shoulders(image: np.ndarray, head_centre: tuple[float, float], head_height: int) -> None:
    x, y = round(head_centre[0]), round(head_centre[1] + head_height * 0.95)
    axes = (round(head_height * 0.95), round(head_height * 0.5))
    cv2.ellipse(image, (x, y), axes, 0, 180, 360, (70, 80, 110), thickness=-1)
    neck = (round(head_height * 0.17), round(head_height * 0.3))
    cv2.ellipse(
        image,
        (x, round(head_centre[1] + head_height * 0.45)),
        neck,
        0,
        0,
        360,
        (180, 140, 120),
        thickness=-1,
    )


# --- Plain files for the container's refusals -----------------------------------------------


def plain_clip(
    path: Path,
    *,
    seconds: float = 4.0,
    width: int = 480,
    height: int = 360,
    fps: int = 10,
    has_video: bool = True,
    has_audio: bool = True,
    container_format: str = "mp4",
) -> Path:
    """A cheap clip of moving colour bars and a tone, for tests about the file, not the face."""
    frame_count = round(seconds * fps)
    with av.open(str(path), "w", format=container_format) as container:
        # Every stream is added before the first packet is written (the header).
        video = container.add_stream("libx264", rate=fps) if has_video else None
        sound = container.add_stream("aac", rate=16_000) if has_audio else None
        if sound is not None:
            sound.layout = "mono"
        if video is not None:
            video.width = width
            video.height = height
            video.pix_fmt = "yuv420p"
            video.options = {"preset": "ultrafast"}
            columns = np.linspace(0, 255, width, dtype=np.float32)
            for index in range(frame_count):
                row = np.roll(columns, index * 4).astype(np.uint8)
                image = np.broadcast_to(row[None, :, None], (height, width, 3)).copy()
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode())
        if sound is not None:
            tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * 16_000)) / 16_000)
            audio_frame = av.AudioFrame.from_ndarray(
                tone.astype(np.float32)[None, :], format="flt", layout="mono"
            )
            audio_frame.sample_rate = 16_000
            container.mux(sound.encode(audio_frame))
            container.mux(sound.encode())
    return path


def webm_clip(path: Path, *, claimed_side: int | None = None, in_header: bool = True) -> Path:
    """A 3.2 s 320x320 WebM (VP8 + Opus), as a browser's MediaRecorder makes, ~30 kB.

    With `claimed_side` it becomes a decompression bomb: the keyframe headers (and, with
    `in_header`, the Matroska track's pixel size) are rewritten to claim frames of that many
    pixels a side; 16000 would need ~380 MB per decoded frame.
    """
    fps, frames, seconds = 5, 16, 3.2
    with av.open(str(path), "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=fps)
        video.width = video.height = 320
        video.pix_fmt = "yuv420p"
        video.options = {"deadline": "realtime", "cpu-used": "8"}
        sound = container.add_stream("libopus", rate=48_000)
        sound.layout = "mono"
        for index in range(frames):
            image = np.full((320, 320, 3), index * 10, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        tone = 0.1 * np.sin(np.arange(round(seconds * 48_000)) * 0.05)
        audio_frame = av.AudioFrame.from_ndarray(
            tone.astype(np.float32)[None, :], format="flt", layout="mono"
        )
        audio_frame.sample_rate = 48_000
        container.mux(sound.encode(audio_frame))
        container.mux(sound.encode())
    if claimed_side is None:
        return path
    side = claimed_side
    data = bytearray(path.read_bytes())
    # A VP8 keyframe: a 3-byte tag, the start code 9d 01 2a, then 14-bit width and height.
    start = data.find(b"\x9d\x01\x2a")
    while start != -1:
        data[start + 3 : start + 7] = struct.pack("<HH", side, side)
        start = data.find(b"\x9d\x01\x2a", start + 1)
    if in_header:
        # Matroska PixelWidth (b0) and PixelHeight (ba), each a 2-byte value (320 = 01 40).
        for element in (b"\xb0\x82\x01\x40", b"\xba\x82\x01\x40"):
            offset = data.find(element)
            assert offset != -1
            data[offset + 2 : offset + 4] = struct.pack(">H", side)
    path.write_bytes(data)
    return path


def with_display_rotation(source: Path, target: Path) -> Path:
    """A copy of MP4 `source` whose video track says "display rotated 90 degrees clockwise".

    That is how phones store portrait video: landscape frames plus a rotation in the track
    header's matrix (here rewritten from the identity).
    """
    data = bytearray(source.read_bytes())
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    clockwise = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    matrix = data.find(identity, data.find(b"tkhd"))
    assert matrix != -1
    data[matrix : matrix + len(identity)] = clockwise
    target.write_bytes(data)
    return target


# Speech variants tried, in order, by `heard_correctly`: the recogniser's accuracy on synthetic
# voices is measured elsewhere (about 96% for en-us at 150 wpm); a test about the pipeline must
# not fail on the other 4%.
SPEECH_VARIANTS = tuple(
    {"rate_wpm": rate, "seed": seed} for seed in (1, 2, 3) for rate in (150, 130, 170)
)


def through_codec(samples: np.ndarray, codec: str = "aac", container: str = "mp4") -> np.ndarray:
    """48 kHz float samples encoded with `codec` and decoded to 16 kHz, as an upload's sound
    reaches the recogniser."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=AUDIO_RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            samples[None, :].astype(np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        output.mux(stream.encode(frame))
        output.mux(stream.encode())
    buffer.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    chunks = []
    with av.open(buffer) as decoded:
        for audio in decoded.decode(audio=0):
            chunks += [chunk.to_ndarray().reshape(-1) for chunk in resampler.resample(audio)]
    return np.concatenate(chunks).astype(np.float32)


def heard_correctly(
    spec: RecordingSpec, audio_round_trip: Any = None
) -> RecordingSpec:
    """`spec` with the first speech variant whose digits the liveness recogniser hears right.

    `audio_round_trip(samples_48k) -> samples_16k` stands in for what the upload path does to
    the sound (the default: through AAC in MP4, as `build_recording` encodes it).
    """
    from cameos.liveness.speech import check_digits

    for variant in SPEECH_VARIANTS:
        candidate = dataclasses.replace(spec, **variant)
        samples = spoken_digits(candidate)
        heard = (audio_round_trip or through_codec)(samples)
        if check_digits(heard, 16_000, spec.digits).is_match:
            return candidate
    raise AssertionError(f"no speech variant of {spec.digits} is recognised")
