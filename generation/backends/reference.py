"""The reference backend: real, watchable clips on a CPU with no model weights.

Everything visual and audible derives from a hash of (prompt, seed, width, height, seconds), so
the same request always renders the same clip. Text-to-video draws a colour-cycling plasma with
drifting glows; image-to-video slowly zooms and pans over the input image; a remix re-times the
source video's frames and grades them with the new prompt's colours. All three carry the
prompt as captions, and quoted dialogue is spoken over a quiet ambient pad. Tagged cameos walk
through every mode's frames, under the captions (`generation.backends.cameo_layer`).

It is built for speed: backgrounds come from one precomputed field and a palette lookup, and
each caption is drawn once and blended into the frames where it shows.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from generation.backends.base import RenderedClip, RenderRequest, VideoBackend
from generation.backends.cameo_layer import CameoLayer
from generation.media import speech
from generation.media.encode import load_font, resample_audio

FRAMES_PER_SECOND = 24
SAMPLE_RATE = 48_000

MIN_CAPTION_SECONDS = 1.0
CAPTION_FADE_SECONDS = 0.2
READING_CHARACTERS_PER_SECOND = 15.0
MAX_CAPTION_CHARACTERS = 140
# More than fits on a caption's lines anyway; keeps wrapping cheap for absurd prompts.
MAX_CAPTION_TEXT_CHARACTERS = 600
# About 20 s of speech: longer quotes are cut rather than synthesised past the clip's end.
MAX_SPOKEN_CHARACTERS = 300
SPEECH_LEAD_SECONDS = 0.15
SPEECH_TAIL_SECONDS = 0.35
SPEECH_PEAK = 0.7
AMBIENT_PEAK = 0.06
AUDIO_FADE_SECONDS = 0.25
KEN_BURNS_ZOOM = 0.12
KEN_BURNS_PAN = 0.06  # of the frame, at most

# Straight or curly double quotes; a stray closing quote of the other kind still closes.
_QUOTED_DIALOGUE = re.compile(r"[\"“]([^\"“”]+)[\"”]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
# Chords for the ambient pad, as frequency ratios over the root.
_PAD_CHORDS = (
    (1.0, 5 / 4, 3 / 2, 15 / 8),
    (1.0, 6 / 5, 3 / 2, 9 / 5),
    (1.0, 9 / 8, 3 / 2, 2.0),
    (1.0, 4 / 3, 3 / 2, 2.0),
)


@dataclass(frozen=True, eq=False)
class Caption:
    text: str
    is_dialogue: bool
    start_frame: int
    end_frame: int  # exclusive
    # Spoken dialogue at SAMPLE_RATE, starting SPEECH_LEAD_SECONDS after the caption appears.
    speech: np.ndarray | None = field(default=None, repr=False)


class ReferenceBackend(VideoBackend):
    name = "reference"

    def render(self, request: RenderRequest) -> RenderedClip:
        if request.seconds <= 0 or request.width <= 0 or request.height <= 0:
            raise ValueError(
                f"seconds, width and height must be positive, got {request.seconds} s "
                f"{request.width}x{request.height}"
            )
        frame_count = request.seconds * FRAMES_PER_SECOND
        # Built first: it decodes the cameos' reference images, so a bad one fails the render
        # before any work is done.
        cameos = CameoLayer(
            request.cameos,
            width=request.width,
            height=request.height,
            seed=_request_seed(request, "cameos"),
        )
        rng = _request_rng(request)
        look = _Look.draw(rng, request.width, request.height)
        captions = plan_captions(request.prompt, frame_count)
        audio = _soundtrack(look, captions, frame_count)

        if request.source_video is not None:
            backgrounds = _remix_frames(request.source_video, look, frame_count)
        elif request.input_reference is not None:
            backgrounds = _ken_burns_frames(request.input_reference, look, frame_count)
        else:
            backgrounds = _plasma_frames(look, frame_count)
        scenes = cameos.composite(backgrounds, fps=FRAMES_PER_SECOND, frame_count=frame_count)
        return RenderedClip(
            fps=FRAMES_PER_SECOND,
            frame_count=frame_count,
            frames=_with_captions(scenes, captions, request.width, request.height, frame_count),
            audio=audio,
            sample_rate=SAMPLE_RATE,
        )


def _request_rng(request: RenderRequest) -> np.random.Generator:
    key = json.dumps([request.prompt, request.seed, request.width, request.height, request.seconds])
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def _request_seed(request: RenderRequest, purpose: str) -> int:
    """A seed of its own for `purpose`, so that adding draws there leaves the look unchanged."""
    key = json.dumps(
        [purpose, request.prompt, request.seed, request.width, request.height, request.seconds]
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# --- captions and sound -------------------------------------------------------------------


def split_prompt(prompt: str) -> list[tuple[str, bool]]:
    """The prompt as caption-sized pieces, each flagged True when it is quoted dialogue."""
    pieces: list[tuple[str, bool]] = []
    cursor = 0
    for match in _QUOTED_DIALOGUE.finditer(prompt):
        pieces += [(text, False) for text in _narrative_pieces(prompt[cursor : match.start()])]
        dialogue = " ".join(match.group(1).split())
        if dialogue:
            pieces.append((dialogue, True))
        cursor = match.end()
    pieces += [(text, False) for text in _narrative_pieces(prompt[cursor:])]
    return pieces


def _narrative_pieces(text: str) -> list[str]:
    pieces = []
    for sentence in _SENTENCE_BREAK.split(text):
        words = sentence.split()
        # Punctuation left over around a quotation ("She said , ...") is not worth a caption.
        if not any(character.isalnum() for word in words for character in word):
            continue
        chunk: list[str] = []
        for word in words:
            if chunk and len(" ".join([*chunk, word])) > MAX_CAPTION_CHARACTERS:
                pieces.append(" ".join(chunk))
                chunk = []
            chunk.append(word)
        pieces.append(" ".join(chunk))
    return pieces


def plan_captions(prompt: str, frame_count: int, fps: int = FRAMES_PER_SECOND) -> list[Caption]:
    """Spread the prompt's pieces over the clip, giving dialogue time to be spoken."""
    pieces = split_prompt(prompt)
    max_captions = max(1, int(frame_count / fps / MIN_CAPTION_SECONDS))
    while len(pieces) > max_captions:
        narrative_pairs = [
            index
            for index in range(len(pieces) - 1)
            if not pieces[index][1] and not pieces[index + 1][1]
        ]
        if not narrative_pairs:
            pieces.pop()  # more dialogue than the clip has time for: the tail is cut
            continue
        index = min(narrative_pairs, key=lambda i: len(pieces[i][0]) + len(pieces[i + 1][0]))
        pieces[index : index + 2] = [(f"{pieces[index][0]} {pieces[index + 1][0]}", False)]
    if not pieces:
        return []

    speeches: list[np.ndarray | None] = []
    wanted_seconds: list[float] = []
    for text, is_dialogue in pieces:
        if is_dialogue:
            samples, rate = speech.synthesize(text[:MAX_SPOKEN_CHARACTERS])
            spoken = resample_audio(samples, rate, SAMPLE_RATE)
            speeches.append(spoken)
            seconds = len(spoken) / SAMPLE_RATE + SPEECH_LEAD_SECONDS + SPEECH_TAIL_SECONDS
        else:
            speeches.append(None)
            seconds = len(text) / READING_CHARACTERS_PER_SECOND
        wanted_seconds.append(max(MIN_CAPTION_SECONDS, seconds))

    # Every caption gets an equal floor, then the rest is shared by how much each wants.
    total_seconds = frame_count / fps
    floor_seconds = min(MIN_CAPTION_SECONDS, total_seconds / len(pieces))
    extra_wanted = [seconds - floor_seconds for seconds in wanted_seconds]
    spare_seconds = total_seconds - floor_seconds * len(pieces)
    extra_total = sum(extra_wanted)
    captions = []
    elapsed = 0.0
    start_frame = 0
    for (text, is_dialogue), speech_samples, extra in zip(
        pieces, speeches, extra_wanted, strict=True
    ):
        share = extra / extra_total if extra_total > 0 else 1 / len(pieces)
        elapsed += floor_seconds + spare_seconds * share
        end_frame = min(frame_count, max(start_frame + 1, round(elapsed * fps)))
        captions.append(Caption(text, is_dialogue, start_frame, end_frame, speech_samples))
        start_frame = end_frame
    return [caption for caption in captions if caption.end_frame > caption.start_frame]


def _soundtrack(look: _Look, captions: list[Caption], frame_count: int) -> np.ndarray:
    sample_count = frame_count * SAMPLE_RATE // FRAMES_PER_SECOND
    audio = _ambient_pad(look, sample_count)
    for caption in captions:
        if caption.speech is None or len(caption.speech) == 0:
            continue
        peak = float(np.abs(caption.speech).max())
        spoken = caption.speech * (SPEECH_PEAK / peak) if peak > 0 else caption.speech
        start = round((caption.start_frame / FRAMES_PER_SECOND + SPEECH_LEAD_SECONDS) * SAMPLE_RATE)
        end = min(sample_count, start + len(spoken))
        if end > start:
            audio[start:end] += spoken[: end - start]
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _ambient_pad(look: _Look, sample_count: int) -> np.ndarray:
    seconds = np.arange(sample_count, dtype=np.float64) / SAMPLE_RATE
    pad = np.zeros(sample_count, dtype=np.float64)
    for partial, ratio in enumerate(look.pad_ratios):
        frequency = look.pad_root_hz * ratio
        swell = 0.6 + 0.4 * np.sin(2 * np.pi * look.pad_swell_hz[partial] * seconds + partial)
        # Two slightly detuned voices per note give the pad its slow shimmer.
        for detune in (0.998, 1.002):
            pad += swell * np.sin(2 * np.pi * frequency * detune * seconds) / (partial + 1)
    peak = float(np.abs(pad).max()) if sample_count else 0.0
    if peak > 0:
        pad *= AMBIENT_PEAK / peak
    fade = min(sample_count // 2, round(AUDIO_FADE_SECONDS * SAMPLE_RATE))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        pad[:fade] *= ramp
        pad[-fade:] *= ramp[::-1]
    return pad.astype(np.float32)


# --- the look: colours and motion drawn from the request hash -----------------------------


@dataclass(frozen=True, eq=False)
class _Look:
    width: int
    height: int
    palette: bytes  # 256 RGB entries for the plasma, cyclic
    anchor_colors: tuple[tuple[int, int, int], ...]
    waves: tuple[tuple[float, float, float, float], ...]  # (kx, ky, phase, weight)
    ripple: tuple[float, float, float]  # (centre x, centre y, cycles per pixel)
    palette_cycles: float
    palette_speed: float  # palette entries per frame
    pan_periods: tuple[float, float]
    blobs: tuple[tuple[float, ...], ...]  # (radius, ax, ay, period x, period y, phase x, phase y)
    pan_direction: tuple[float, float]
    grade_tint: tuple[float, float, float]
    pad_root_hz: float
    pad_ratios: tuple[float, ...]
    pad_swell_hz: tuple[float, ...]

    @classmethod
    def draw(cls, rng: np.random.Generator, width: int, height: int) -> _Look:
        base_hue = float(rng.random())
        hue_steps = (
            0.0,
            float(rng.choice([0.08, 0.33, 0.5])),
            float(rng.choice([0.16, 0.6])),
            float(rng.choice([0.42, 0.75])),
        )
        anchors = []
        for index, step in enumerate(hue_steps):
            saturation = float(rng.uniform(0.55, 0.9))
            value = float(rng.uniform(0.75, 0.95) if index % 2 else rng.uniform(0.25, 0.45))
            red, green, blue = colorsys.hsv_to_rgb((base_hue + step) % 1.0, saturation, value)
            anchors.append((round(red * 255), round(green * 255), round(blue * 255)))
        shortest = min(width, height)
        waves = []
        for _ in range(3):
            angle = float(rng.uniform(0, 2 * np.pi))
            cycles = float(rng.uniform(0.6, 1.8)) / shortest
            waves.append(
                (
                    math.cos(angle) * cycles,
                    math.sin(angle) * cycles,
                    float(rng.uniform(0, 2 * np.pi)),
                    float(rng.uniform(0.6, 1.0)),
                )
            )
        ripple = (
            float(rng.uniform(0.2, 0.8)) * width,
            float(rng.uniform(0.2, 0.8)) * height,
            float(rng.uniform(1.0, 2.5)) / shortest,
        )
        blobs = tuple(
            (
                float(rng.uniform(0.16, 0.28)) * shortest,
                float(rng.uniform(0.25, 0.4)),
                float(rng.uniform(0.25, 0.4)),
                float(rng.uniform(3.0, 7.0)),
                float(rng.uniform(3.0, 7.0)),
                float(rng.uniform(0, 2 * np.pi)),
                float(rng.uniform(0, 2 * np.pi)),
            )
            for _ in range(3)
        )
        pan_angle = float(rng.uniform(0, 2 * np.pi))
        tint = colorsys.hsv_to_rgb((base_hue + 0.5) % 1.0, 0.7, 1.0)
        return cls(
            width=width,
            height=height,
            palette=_cyclic_palette(anchors),
            anchor_colors=tuple(anchors),
            waves=tuple(waves),
            ripple=ripple,
            palette_cycles=float(rng.uniform(1.0, 2.0)),
            palette_speed=float(rng.uniform(1.5, 3.0)),
            pan_periods=(float(rng.uniform(5.0, 9.0)), float(rng.uniform(5.0, 9.0))),
            blobs=blobs,
            pan_direction=(math.cos(pan_angle), math.sin(pan_angle)),
            grade_tint=tint,
            pad_root_hz=110.0 * 2 ** (int(rng.integers(0, 12)) / 12),
            pad_ratios=_PAD_CHORDS[int(rng.integers(0, len(_PAD_CHORDS)))],
            pad_swell_hz=tuple(float(rng.uniform(0.07, 0.25)) for _ in range(4)),
        )


def _cyclic_palette(anchors: list[tuple[int, int, int]]) -> bytes:
    """256 colours easing from anchor to anchor and back to the first."""
    positions = np.arange(256) / 256 * len(anchors)
    index = positions.astype(int)
    ease = (1 - np.cos((positions - index) * np.pi)) / 2
    colors = np.asarray(anchors, dtype=np.float64)
    start, end = colors[index], colors[(index + 1) % len(anchors)]
    palette = start + (end - start) * ease[:, np.newaxis]
    return np.round(palette).astype(np.uint8).tobytes()


# --- backgrounds --------------------------------------------------------------------------


def _plasma_frames(look: _Look, frame_count: int) -> Iterator[np.ndarray]:
    width, height = look.width, look.height
    margin_x, margin_y = max(1, width // 12), max(1, height // 12)
    rows = np.arange(height + 2 * margin_y, dtype=np.float32)[:, np.newaxis]
    columns = np.arange(width + 2 * margin_x, dtype=np.float32)[np.newaxis, :]
    plasma = np.zeros((rows.shape[0], columns.shape[1]), dtype=np.float32)
    for kx, ky, phase, weight in look.waves:
        plasma += weight * np.sin(2 * np.pi * (kx * columns + ky * rows) + phase)
    centre_x, centre_y, ripple_cycles = look.ripple
    distance = np.hypot(columns - centre_x - margin_x, rows - centre_y - margin_y)
    plasma += np.sin(2 * np.pi * ripple_cycles * distance)
    plasma -= plasma.min()
    plasma *= 255.999 * look.palette_cycles / max(float(plasma.max()), 1e-6)
    field_index = np.mod(plasma, 256).astype(np.uint8)
    del plasma, distance

    glows = [
        _Glow(look, radius_and_path, color, strength=0.45)
        for radius_and_path, color in zip(look.blobs, look.anchor_colors[1::2] * 2, strict=False)
    ]
    period_x, period_y = look.pan_periods
    for frame_index in range(frame_count):
        seconds = frame_index / FRAMES_PER_SECOND
        offset_x = round(margin_x * (1 + math.sin(2 * math.pi * seconds / period_x)))
        offset_y = round(margin_y * (1 + math.cos(2 * math.pi * seconds / period_y)))
        # uint8 addition wraps at 256, exactly the palette's cycle: cycling colours is one add.
        shift = np.uint8(round(frame_index * look.palette_speed) % 256)
        indices = field_index[offset_y : offset_y + height, offset_x : offset_x + width] + shift
        image = Image.frombuffer("P", (width, height), indices, "raw", "P", 0, 1)
        image.putpalette(look.palette, rawmode="RGB")
        frame = np.array(image.convert("RGB"))
        for glow in glows:
            glow.add_to(frame, seconds)
        yield frame


class _Glow:
    """A soft additive disc drifting on a Lissajous path; the sprite is computed once."""

    def __init__(
        self,
        look: _Look,
        radius_and_path: tuple[float, ...],
        color: tuple[int, int, int],
        strength: float,
    ) -> None:
        radius, self._ax, self._ay, self._period_x, self._period_y, self._phase_x, self._phase_y = (
            radius_and_path
        )
        self._frame_width, self._frame_height = look.width, look.height
        size = max(2, round(radius * 2))
        axis = (np.arange(size, dtype=np.float32) - (size - 1) / 2) / (size / 2)
        distance_squared = axis[np.newaxis, :] ** 2 + axis[:, np.newaxis] ** 2
        profile = np.clip(1 - distance_squared, 0, 1) ** 2 * strength
        # Lighten the colour so the glow reads as light rather than paint.
        light = (np.asarray(color, dtype=np.float32) + 255) / 2
        self._sprite = np.round(profile[..., np.newaxis] * light).astype(np.uint16)
        self._size = size

    def add_to(self, frame: np.ndarray, seconds: float) -> None:
        centre_x = self._frame_width * (
            0.5 + self._ax * math.sin(2 * math.pi * seconds / self._period_x + self._phase_x)
        )
        centre_y = self._frame_height * (
            0.5 + self._ay * math.sin(2 * math.pi * seconds / self._period_y + self._phase_y)
        )
        left, top = round(centre_x - self._size / 2), round(centre_y - self._size / 2)
        _add_clipped(frame, self._sprite, left, top)


def _add_clipped(frame: np.ndarray, sprite: np.ndarray, left: int, top: int) -> None:
    height, width = frame.shape[:2]
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + sprite.shape[1]), min(height, top + sprite.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    region = frame[y0:y1, x0:x1]
    lit = region + sprite[y0 - top : y1 - top, x0 - left : x1 - left]
    region[...] = np.minimum(lit, 255).astype(np.uint8)


def _ken_burns_frames(image_path: Path, look: _Look, frame_count: int) -> Iterator[np.ndarray]:
    width, height = look.width, look.height
    with Image.open(image_path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    # Scaled once so that the closest zoom shows the image 1:1: sharp, and cheap per frame.
    scale = max(width / image.width, height / image.height) * (1 + KEN_BURNS_ZOOM)
    image = image.resize(
        (max(1, math.ceil(image.width * scale)), max(1, math.ceil(image.height * scale))),
        Image.Resampling.LANCZOS,
        reducing_gap=3.0,
    )
    last_frame = max(1, frame_count - 1)
    for frame_index in range(frame_count):
        progress = frame_index / last_frame
        eased = progress * progress * (3 - 2 * progress)
        zoom = 1 + KEN_BURNS_ZOOM * eased
        window_width = width * (1 + KEN_BURNS_ZOOM) / zoom
        window_height = height * (1 + KEN_BURNS_ZOOM) / zoom
        slack_x = (image.width - window_width) / 2
        slack_y = (image.height - window_height) / 2
        pan_x = min(slack_x, KEN_BURNS_PAN * window_width) * look.pan_direction[0]
        pan_y = min(slack_y, KEN_BURNS_PAN * window_height) * look.pan_direction[1]
        centre_x = image.width / 2 + pan_x * eased
        centre_y = image.height / 2 + pan_y * eased
        box = (
            centre_x - window_width / 2,
            centre_y - window_height / 2,
            centre_x + window_width / 2,
            centre_y + window_height / 2,
        )
        yield np.array(image.resize((width, height), Image.Resampling.BILINEAR, box=box))


def _remix_frames(video_path: Path, look: _Look, frame_count: int) -> Iterator[np.ndarray]:
    """The source's frames stretched in time over the new duration, graded and re-lit."""
    width, height = look.width, look.height
    grade = _grade_table(look.grade_tint)
    red, green, blue = look.grade_tint
    glow = _Glow(
        look, look.blobs[0], (round(red * 255), round(green * 255), round(blue * 255)), strength=0.3
    )
    source_count = _count_video_frames(video_path)
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = container.decode(stream)
        current: av.VideoFrame | None = None
        current_index = -1
        for frame_index in range(frame_count):
            wanted = min(source_count - 1, frame_index * source_count // frame_count)
            while current_index < wanted:
                following = next(decoded, None)
                if following is None:
                    break  # the header promised more frames than there are: hold the last
                current, current_index = following, current_index + 1
            if current is None:
                raise ValueError(f"{video_path.name} has no decodable video frames")
            image = _cover(current.to_image(), width, height).point(grade)
            frame = np.array(image)
            glow.add_to(frame, frame_index / FRAMES_PER_SECOND)
            yield frame


def _count_video_frames(video_path: Path) -> int:
    with av.open(str(video_path)) as container:
        if not container.streams.video:
            raise ValueError(f"{video_path.name} has no video stream")
        stream = container.streams.video[0]
        if stream.frames > 0:
            return stream.frames
        # No count in the header: demuxing without decoding is cheap.
        count = sum(1 for packet in container.demux(stream) if packet.size > 0)
    if count == 0:
        raise ValueError(f"{video_path.name} has no video frames")
    return count


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop `image` to exactly fill width x height."""
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    crop_width, crop_height = width / scale, height / scale
    left, top = (image.width - crop_width) / 2, (image.height - crop_height) / 2
    return image.resize(
        (width, height),
        Image.Resampling.BILINEAR,
        box=(left, top, left + crop_width, top + crop_height),
    )


def _grade_table(tint: tuple[float, float, float]) -> list[int]:
    """A per-channel curve: more contrast, pulled towards the tint. Monotonic, so the source
    stays recognisable."""
    levels = np.arange(256) / 255
    contrasted = np.clip(0.5 + (levels - 0.5) * 1.15, 0, 1)
    table = []
    for channel_tint in tint:
        graded = contrasted * (0.6 + 0.4 * channel_tint) + 0.06 * channel_tint
        table += np.round(np.clip(graded, 0, 1) * 255).astype(int).tolist()
    return table


# --- caption overlays ---------------------------------------------------------------------


def _with_captions(
    backgrounds: Iterator[np.ndarray],
    captions: list[Caption],
    width: int,
    height: int,
    frame_count: int,
) -> Iterator[np.ndarray]:
    overlays = [_CaptionOverlay(caption, width, height, frame_count) for caption in captions]
    for frame_index, frame in enumerate(backgrounds):
        for overlay in overlays:
            overlay.blend_into(frame, frame_index)
        yield frame


class _CaptionOverlay:
    """One caption drawn once as a translucent box with wrapped text, faded in and out (but
    fully visible on the clip's first and last frames, which serve as previews)."""

    def __init__(self, caption: Caption, width: int, height: int, frame_count: int) -> None:
        self._start, self._end = caption.start_frame, caption.end_frame
        self._fades_in = caption.start_frame > 0
        self._fades_out = caption.end_frame < frame_count
        self._fade_frames = max(1, round(CAPTION_FADE_SECONDS * FRAMES_PER_SECOND))
        font_size = max(12, round(min(width, height) * 0.045))
        font = load_font(font_size)
        padding_x, padding_y = round(font_size * 0.6), round(font_size * 0.4)
        max_text_width = max(font_size, round(width * 0.86) - 2 * padding_x)
        text = caption.text[:MAX_CAPTION_TEXT_CHARACTERS]
        text = f"“{text}”" if caption.is_dialogue else text
        max_lines = 3 if width > height else 5
        lines = _wrap(text, font, max_text_width, max_lines)
        ascent, descent = font.getmetrics()
        line_height = round((ascent + descent) * 1.1)
        text_width = max(round(font.getlength(line)) for line in lines)
        box_width = min(width, text_width + 2 * padding_x)
        box_height = min(height, line_height * len(lines) + 2 * padding_y)

        image = Image.new("RGBA", (box_width, box_height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle(
            (0, 0, box_width - 1, box_height - 1),
            radius=round(font_size * 0.4),
            fill=(0, 0, 0, 150),
        )
        color = (255, 226, 130, 255) if caption.is_dialogue else (255, 255, 255, 255)
        for line_index, line in enumerate(lines):
            line_x = (box_width - font.getlength(line)) / 2
            draw.text((line_x, padding_y + line_index * line_height), line, font=font, fill=color)

        rgba = np.asarray(image)
        alpha = rgba[..., 3:4].astype(np.uint16)
        self._alpha = alpha + (alpha >> 7)  # 0..255 -> 0..256 so the blend can shift by 8
        self._color = rgba[..., :3].astype(np.uint16)
        self._premultiplied = self._color * self._alpha
        self._alpha_complement = 256 - self._alpha
        self._left = (width - box_width) // 2
        bottom = round(height * (0.9 if width > height else 0.86))
        self._top = max(0, min(height - box_height, bottom - box_height))
        self._box_width, self._box_height = box_width, box_height

    def blend_into(self, frame: np.ndarray, frame_index: int) -> None:
        if not self._start <= frame_index < self._end:
            return
        opacity = 1.0
        if self._fades_in:
            opacity = min(opacity, (frame_index - self._start + 1) / self._fade_frames)
        if self._fades_out:
            opacity = min(opacity, (self._end - frame_index) / self._fade_frames)
        region = frame[
            self._top : self._top + self._box_height, self._left : self._left + self._box_width
        ]
        if opacity >= 1.0:
            blended = (region * self._alpha_complement + self._premultiplied) >> 8
        else:
            alpha = (self._alpha * round(opacity * 256)) >> 8
            blended = (region * (256 - alpha) + self._color * alpha) >> 8
        region[...] = blended.astype(np.uint8)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int, max_lines: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if len(lines) > max_lines:
            break
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= max_width:
            line = candidate
            continue
        if line:
            lines.append(line)
        # A single word wider than the box is broken wherever it has to be.
        while font.getlength(word) > max_width and len(word) > 1 and len(lines) <= max_lines:
            fits, too_long = 1, len(word)  # binary search for the longest prefix that fits
            while too_long - fits > 1:
                middle = (fits + too_long) // 2
                if font.getlength(word[:middle]) <= max_width:
                    fits = middle
                else:
                    too_long = middle
            lines.append(word[:fits])
            word = word[fits:]
        line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(f"{last}…") > max_width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], f"{last.rstrip()}…"]
    return lines or [""]
