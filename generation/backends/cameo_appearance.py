"""How a cameo looks in the reference backend: the drawn person, the character card, and the
owner's appearance preferences read from plain words.

A person is their reference face crop, feathered into an ellipse, on a drawn neck and shoulders
(in a colour derived from the handle, or the colour of the top the owner asked for), with the
garments the preferences name: a cap, hat or beanie, glasses or sunglasses, a scarf, each in
the colour word before it. The face itself is only scaled: never recoloured, warped or covered
where a detector looks (headwear stays above the brows, glasses are thin frames and sunglasses
translucent), so the output scan still finds and recognises it.

Person crops are assumed to be face-centred, with the face (brow to chin) filling the middle 60%
of the crop's height and the eyes about 40% from its top: how cameos cuts them. Garments are
placed by those proportions.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

# Proportions of a person reference crop (see the module docstring).
FACE_SHARE_OF_CROP = 0.6
EYE_LINE = 0.39
EYE_SPREAD = 0.145  # each eye's distance from the crop's centre line, of the crop width
# Headwear ends above the brows (~0.29 at this framing, ~0.22 if the face fills 70% of the
# crop) so that the face stays whole for the detector.
BRIM_BOTTOM = 0.2
CHIN_LINE = 0.82

HEAD_FEATHER = 0.18  # of the ellipse's radius
CARD_FEATHER = 0.07  # of the card's shorter side
TORSO_WIDTH = 1.6  # of the crop width
SHOULDER_LINE = 1.0  # of the crop height, from its top: the neck shows below the chin

# Colour words an owner may use, as drawn.
COLOR_WORDS: dict[str, RGB] = {
    "red": (206, 32, 41),
    "crimson": (180, 20, 50),
    "scarlet": (230, 35, 25),
    "maroon": (120, 20, 30),
    "burgundy": (128, 0, 32),
    "orange": (245, 130, 32),
    "yellow": (250, 215, 40),
    "gold": (212, 175, 55),
    "golden": (212, 175, 55),
    "green": (40, 150, 60),
    "lime": (150, 220, 40),
    "olive": (110, 120, 40),
    "khaki": (190, 175, 120),
    "teal": (0, 128, 128),
    "turquoise": (60, 210, 200),
    "cyan": (40, 200, 230),
    "blue": (35, 80, 200),
    "navy": (25, 35, 100),
    "purple": (120, 50, 160),
    "violet": (140, 80, 200),
    "lilac": (190, 160, 220),
    "pink": (240, 120, 170),
    "magenta": (210, 40, 160),
    "brown": (110, 70, 40),
    "beige": (220, 200, 160),
    "tan": (200, 160, 110),
    "cream": (245, 235, 205),
    "black": (25, 25, 28),
    "white": (240, 240, 240),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "silver": (190, 195, 200),
}
HEADWEAR_WORDS = {"cap": "cap", "caps": "cap", "hat": "hat", "hats": "hat", "beanie": "beanie"}
HEADWEAR_WORDS |= {"beanies": "beanie", "beret": "beanie", "toque": "beanie"}
EYEWEAR_WORDS = {"glasses": "glasses", "spectacles": "glasses", "specs": "glasses"}
EYEWEAR_WORDS |= {"eyeglasses": "glasses", "sunglasses": "sunglasses", "shades": "sunglasses"}
NECKWEAR_WORDS = {"scarf": "scarf", "scarves": "scarf", "bandana": "scarf"}
OUTFIT_WORDS = frozenset(
    "shirt t-shirt tshirt tee top jacket hoodie sweater jumper sweatshirt coat dress blouse "
    "suit blazer vest cardigan jersey uniform polo parka".split()
)
# A clause with one of these is not drawn from: drawing "no hat" would draw a hat.
NEGATION_WORDS = frozenset("no not never without don't dont nothing none avoid".split())
# How far before a garment word its colour may come ("my bright red baseball cap").
COLOR_LOOKBACK_WORDS = 3

_CLAUSE_BREAK = re.compile(r"[.;,!?\n]+")
_CONJUNCTION = re.compile(r"\s+(?:and|but|plus|&)\s+", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")


# --- appearance preferences ---------------------------------------------------------------


@dataclass(frozen=True)
class Garment:
    kind: str  # cap, hat, beanie, glasses, sunglasses, scarf
    color: RGB | None  # None: the kind's default


@dataclass(frozen=True)
class Appearance:
    """What a person's preferences ask for, split into what is drawn and what is not."""

    headwear: Garment | None = None
    eyewear: Garment | None = None
    neckwear: Garment | None = None
    outfit_color: RGB | None = None
    # The parts of the preferences no drawing follows, in the owner's words ("" when none).
    not_drawn: str = ""


def parse_preferences(text: str) -> Appearance:
    """Read plain-words preferences: colour words, a few garments; the rest stays words.

    Each clause (split at punctuation and at "and"/"but") is drawn from when it names a garment
    this backend draws; a clause that names none, or any clause from a negation on in the same
    sentence, is kept as words for the caption. Two negations in one clause cancel ("never
    without my cap" asks for the cap).
    """
    found: dict[str, Garment] = {}
    outfit_color: RGB | None = None
    not_drawn: list[str] = []
    for sentence in _CLAUSE_BREAK.split(text):
        kept: list[str] = []
        is_negated = False
        for clause in _CONJUNCTION.split(sentence):
            clause = " ".join(clause.split())
            if not clause:
                continue
            words = _WORD.findall(clause.lower())
            negations = sum(word in NEGATION_WORDS for word in words)
            is_negated = is_negated or negations % 2 == 1
            is_drawn = False
            if not is_negated:
                for index, word in enumerate(words):
                    color = _color_before(words, index)
                    for slot, vocabulary in (
                        ("headwear", HEADWEAR_WORDS),
                        ("eyewear", EYEWEAR_WORDS),
                        ("neckwear", NECKWEAR_WORDS),
                    ):
                        if word in vocabulary:
                            found.setdefault(slot, Garment(vocabulary[word], color))
                            is_drawn = True
                    if word in OUTFIT_WORDS:
                        is_drawn = True
                        if outfit_color is None:
                            outfit_color = color
            if not is_drawn:
                kept.append(clause)
        if kept:
            not_drawn.append(" and ".join(kept))
    return Appearance(
        headwear=found.get("headwear"),
        eyewear=found.get("eyewear"),
        neckwear=found.get("neckwear"),
        outfit_color=outfit_color,
        not_drawn="; ".join(not_drawn),
    )


def _color_before(words: list[str], index: int) -> RGB | None:
    for earlier in reversed(words[max(0, index - COLOR_LOOKBACK_WORDS) : index]):
        if earlier in COLOR_WORDS:
            return COLOR_WORDS[earlier]
    return None


def handle_color(handle: str) -> RGB:
    """A stable, saturated mid-tone colour for `handle` (the default torso colour)."""
    digest = hashlib.sha256(handle.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.6, 0.72)
    return (round(red * 255), round(green * 255), round(blue * 255))


# --- drawing ------------------------------------------------------------------------------


def _feathered_ellipse(width: int, height: int) -> np.ndarray:
    """Alpha 0..1, opaque in the middle and easing to 0 at the box's inscribed ellipse."""
    rows = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (height / 2 * 0.98)
    columns = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2 * 0.96)
    distance = np.sqrt(rows[:, np.newaxis] ** 2 + columns[np.newaxis, :] ** 2)
    ramp = np.clip((1 - distance) / HEAD_FEATHER, 0, 1)
    return ramp * ramp * (3 - 2 * ramp)


def _feathered_card(width: int, height: int) -> np.ndarray:
    """Alpha 0..1 over a card whose edges fade out and whose corners are softly rounded."""
    feather = max(1.0, CARD_FEATHER * min(width, height))
    rows = np.arange(height, dtype=np.float32) + 0.5
    columns = np.arange(width, dtype=np.float32) + 0.5
    row_ramp = np.clip(np.minimum(rows, height - rows) / feather, 0, 1)
    column_ramp = np.clip(np.minimum(columns, width - columns) / feather, 0, 1)
    ramp = row_ramp[:, np.newaxis] * column_ramp[np.newaxis, :]
    return ramp * ramp * (3 - 2 * ramp)


def draw_card(still: Image.Image, width: int, height: int) -> Image.Image:
    """A character's still at width x height, its edges feathered (RGBA; a still's own
    transparency is kept)."""
    resized = still.resize((width, height), Image.Resampling.LANCZOS)
    return _with_alpha(resized, _feathered_card(width, height))


def _with_alpha(image: Image.Image, alpha: np.ndarray) -> Image.Image:
    rgba = np.asarray(image.convert("RGBA")).copy()
    rgba[..., 3] = np.round(rgba[..., 3] * alpha).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def _skin_tone(crop: Image.Image) -> RGB:
    """The median colour of the cheeks and nose, for the drawn neck."""
    pixels = np.asarray(crop)
    height, width = pixels.shape[:2]
    patch = pixels[
        round(height * 0.45) : round(height * 0.6), round(width * 0.4) : round(width * 0.6)
    ]
    if patch.size == 0:
        patch = pixels
    red, green, blue = (int(value) for value in np.median(patch.reshape(-1, 3), axis=0))
    return (red, green, blue)


def _shade(color: RGB, factor: float) -> RGB:
    red, green, blue = (min(255, max(0, round(channel * factor))) for channel in color)
    return (red, green, blue)


def draw_person(
    crop: Image.Image, crop_width: int, crop_height: int, torso_color: RGB, appearance: Appearance
) -> tuple[Image.Image, float, float]:
    """The head on its neck and shoulders, with any garments; returns it with the head centre.

    The canvas's last row is all torso so the renderer can extend it down the frame.
    """
    torso_width = TORSO_WIDTH * crop_width
    canvas_width = math.ceil(max(torso_width, 1.3 * crop_width)) + 2
    headroom = math.ceil(0.16 * crop_height)
    centre_x = canvas_width / 2
    crop_left, crop_top = round(centre_x - crop_width / 2), headroom
    shoulder_top = crop_top + SHOULDER_LINE * crop_height
    shoulder_radius = 0.28 * torso_width
    canvas_height = math.ceil(shoulder_top + shoulder_radius) + 1
    canvas = Image.new("RGBA", (canvas_width, canvas_height), (0, 0, 0, 0))

    # Shoulders: a rounded box running past the bottom edge, lit like a cylinder from the front.
    silhouette = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(silhouette).rounded_rectangle(
        (
            centre_x - torso_width / 2,
            shoulder_top,
            centre_x + torso_width / 2,
            canvas_height + shoulder_radius,
        ),
        radius=shoulder_radius,
        fill=255,
    )
    across = (np.arange(canvas_width, dtype=np.float32) + 0.5 - centre_x) / (torso_width / 2)
    lighting = 0.7 + 0.3 * np.cos(np.clip(across, -1, 1) * math.pi / 2)
    torso_rgb = np.clip(
        lighting[np.newaxis, :, np.newaxis] * np.asarray(torso_color, dtype=np.float32), 0, 255
    )
    torso = np.broadcast_to(torso_rgb.astype(np.uint8), (canvas_height, canvas_width, 3))
    canvas.paste(Image.fromarray(np.ascontiguousarray(torso), "RGB"), (0, 0), silhouette)

    draw = ImageDraw.Draw(canvas)
    # Where the arms meet the chest; the creases run on down the frame with the torso's row.
    crease_color = (*_shade(torso_color, 0.62), 255)
    for side in (-1, 1):
        crease_x = centre_x + side * 0.62 * torso_width / 2
        draw.line(
            (crease_x, shoulder_top + 0.6 * shoulder_radius, crease_x, canvas_height),
            fill=crease_color,
            width=max(1, round(0.012 * torso_width)),
        )
    skin = _skin_tone(crop)
    neck_half = 0.16 * crop_width
    draw.rectangle(
        (
            centre_x - neck_half,
            crop_top + 0.6 * crop_height,
            centre_x + neck_half,
            shoulder_top + 0.05 * crop_height,
        ),
        fill=(*skin, 255),
    )
    draw.ellipse(
        (
            centre_x - 1.3 * neck_half,
            shoulder_top - 0.06 * crop_height,
            centre_x + 1.3 * neck_half,
            shoulder_top + 0.08 * crop_height,
        ),
        fill=(*skin, 255),
    )

    head = _with_alpha(
        crop.resize((crop_width, crop_height), Image.Resampling.LANCZOS),
        _feathered_ellipse(crop_width, crop_height),
    )
    canvas.alpha_composite(head, (crop_left, crop_top))

    garments = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    box = _CropBox(crop_left, crop_top, crop_width, crop_height)
    if appearance.neckwear is not None:
        _draw_scarf(garments, box, appearance.neckwear.color or _shade(torso_color, 0.6))
    if appearance.eyewear is not None:
        _draw_eyewear(garments, box, appearance.eyewear)
    if appearance.headwear is not None:
        _draw_headwear(garments, box, appearance.headwear, default=_shade(torso_color, 0.75))
    canvas.alpha_composite(garments)
    return canvas, centre_x, crop_top + crop_height / 2


@dataclass(frozen=True)
class _CropBox:
    left: float
    top: float
    width: float
    height: float

    def point(self, across: float, down: float) -> tuple[float, float]:
        """A point given as fractions of the crop (0.5, 0.5 is its centre)."""
        return (self.left + across * self.width, self.top + down * self.height)

    def box(
        self, left: float, top: float, right: float, bottom: float
    ) -> tuple[float, float, float, float]:
        x0, y0 = self.point(left, top)
        x1, y1 = self.point(right, bottom)
        return (x0, y0, x1, y1)


def _draw_headwear(layer: Image.Image, crop: _CropBox, garment: Garment, default: RGB) -> None:
    color = garment.color or default
    dark = _shade(color, 0.72)
    draw = ImageDraw.Draw(layer)
    if garment.kind == "beanie":
        draw.rounded_rectangle(
            crop.box(0.12, -0.14, 0.88, BRIM_BOTTOM), radius=0.3 * crop.width, fill=(*color, 255)
        )
        draw.rectangle(crop.box(0.12, BRIM_BOTTOM - 0.07, 0.88, BRIM_BOTTOM), fill=(*dark, 255))
        return
    if garment.kind == "hat":
        draw.chord(crop.box(0.2, -0.18, 0.8, 0.3), 180, 360, fill=(*color, 255))
        draw.rectangle(crop.box(0.2, 0.01, 0.8, 0.06), fill=(*dark, 255))
        draw.ellipse(crop.box(-0.12, 0.04, 1.12, BRIM_BOTTOM), fill=(*color, 255))
        return
    # A cap seen from the front: the crown, its button, and the peak curving over the brow.
    draw.chord(crop.box(0.1, -0.14, 0.9, 0.46), 180, 360, fill=(*color, 255))
    button = 0.03
    draw.ellipse(crop.box(0.5 - button, -0.15, 0.5 + button, -0.15 + 2 * button), fill=(*dark, 255))
    draw.chord(crop.box(0.14, 0.04, 0.86, BRIM_BOTTOM), 0, 180, fill=(*dark, 255))


def _draw_eyewear(layer: Image.Image, crop: _CropBox, garment: Garment) -> None:
    color = garment.color or (20, 20, 24)
    is_dark = garment.kind == "sunglasses"
    # Sunglasses keep the eyes faintly visible: a fully black lens hides what a face detector
    # and the identity check rely on most.
    lens_fill = (*_shade(color, 0.5), 150) if is_dark else None
    line = max(2, round(0.011 * crop.width))
    draw = ImageDraw.Draw(layer)
    lens_half_width, lens_half_height = 0.095, 0.06
    for side in (-1, 1):
        centre = 0.5 + side * EYE_SPREAD
        draw.ellipse(
            crop.box(
                centre - lens_half_width,
                EYE_LINE - lens_half_height,
                centre + lens_half_width,
                EYE_LINE + lens_half_height,
            ),
            fill=lens_fill,
            outline=(*color, 255),
            width=line,
        )
        outer = 0.5 + side * (EYE_SPREAD + lens_half_width)
        draw.line(
            (crop.point(outer, EYE_LINE - 0.02), crop.point(0.5 + side * 0.4, EYE_LINE - 0.03)),
            fill=(*color, 255),
            width=line,
        )
    inner = EYE_SPREAD - lens_half_width
    draw.line(
        (crop.point(0.5 - inner, EYE_LINE - 0.02), crop.point(0.5 + inner, EYE_LINE - 0.02)),
        fill=(*color, 255),
        width=line,
    )


def _draw_scarf(layer: Image.Image, crop: _CropBox, color: RGB) -> None:
    draw = ImageDraw.Draw(layer)
    top = CHIN_LINE + 0.05
    draw.rounded_rectangle(
        crop.box(0.24, top, 0.76, top + 0.13), radius=0.05 * crop.width, fill=(*color, 255)
    )
    draw.rounded_rectangle(
        crop.box(0.56, top + 0.08, 0.68, top + 0.42),
        radius=0.03 * crop.width,
        fill=(*_shade(color, 0.85), 255),
    )
