"""Tagged cameos composited into the reference backend's frames.

A person cameo is its first reference face crop, feathered into an ellipse and set on a drawn
neck and shoulders (a torso in a colour derived from the handle, or the colour the owner asked
for); a character cameo is its first still, feathered into a card. Each cameo walks its own
lane: a smooth path across the lane drawn from the request hash, a bob per step, a sway per
stride, and a slow growth as if walking nearer. Lanes are side by side and sized so that heads
never overlap; with two or three cameos, one walks a little further back.

The face is pasted as it is: scaled and moved, never recoloured or warped, so the output check
finds it with a real face detector and embeds it close to the reference. Faces are about a fifth
of the frame height, the size a person has in a selfie-style clip.

Owners' appearance preferences are followed where a drawing can follow them (a coloured cap,
hat or beanie, glasses or sunglasses, a scarf, the colour of the top they wear); whatever cannot
be drawn is shown in a caption line at the top ("@maya: always smiling").

Speed: each cameo is drawn once at its largest size (the "master"); per scale bucket the master
is resized once into premultiplied arrays, and a frame costs one integer blend of the sprite's
box plus a slice fill for the torso below it. Scale only grows during a clip, so a bucket is
never revisited and only the current one is kept.

Person crops are assumed to be face-centred with the face (brow to chin) filling the middle 60%
of the crop's height and the eyes about 40% from its top, which is how cameos cuts them;
accessories are placed by those proportions.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from generation.backends.base import CameoReference
from generation.media.encode import load_font

RGB = tuple[int, int, int]

MAX_CAMEOS = 3
# Reference images are downscaled to this on their longer side: the largest sprite a 1792 px
# frame needs is smaller, and it bounds the memory an oversized upload can cost.
MAX_REFERENCE_SIDE = 1024
# Refused rather than decoded (JPEGs are measured after draft-mode reduction): 64 MP of RGBA is
# 256 MB, too much for a worker to spend on a reference image.
MAX_REFERENCE_PIXELS = 64_000_000

# Proportions of a person reference crop (see the module docstring).
FACE_SHARE_OF_CROP = 0.6
EYE_LINE = 0.39
EYE_SPREAD = 0.145  # each eye's distance from the crop's centre line, of the crop width
# Headwear ends above the brows (~0.29 at this framing, ~0.22 if the face fills 70% of the
# crop) so that the face stays whole for the detector.
BRIM_BOTTOM = 0.2
CHIN_LINE = 0.82

# Face height as a share of the frame height, by the number of cameos in the clip.
FACE_SHARE_OF_FRAME = {1: 0.21, 2: 0.2, 3: 0.19}
CHARACTER_SHARE_OF_FRAME = 0.3
HEAD_CENTRE_LINE = 0.36  # of the frame height, for a person at walk scale 1
CARD_BELOW_HEAD = 0.06  # a card's centre sits this much lower (of the frame height)
BACK_ROW_SCALE = 0.93
BACK_ROW_LIFT = 0.035  # of the frame height, for a back row beside a front one
# Three cameos in a tall frame stand in two rows: two in front, one behind and between them.
TALL_FRAME = 1.2  # height over width
TALL_FRONT_ROW_LINE = 0.52
TALL_BACK_ROW_LINE = 0.25
LANE_FILL = 0.92  # of its lane's width, at most, for a head or card at its largest
WALK_SCALES = (0.93, 1.07)  # start and end of the clip: walking nearer
WALK_LOWERING = 0.6  # head drop per unit of scale growth, in crop heights (nearer is lower)
STEPS_PER_SECOND = 1.7
BOB = 0.018  # of the crop height
SWAY = 0.03  # of the crop width
# Sprites are re-cut whenever the size has grown by this many pixels: steps this small do not
# show, and each cut costs a resize.
BUCKET_PIXELS = 6
MAX_BUCKETS = 10
# The master is drawn this much larger than the largest bucket, so every bucket is a downscale
# and the drawn shapes come out anti-aliased.
MASTER_OVERSAMPLE = 1.25
BAND_ROWS = 32  # sprites are blended in bands of this many rows (see `_Overlay`)
HEAD_FEATHER = 0.18  # of the ellipse's radius
CARD_FEATHER = 0.07  # of the card's shorter side
TORSO_WIDTH = 1.6  # of the crop width
SHOULDER_LINE = 1.0  # of the crop height, from its top: the neck shows below the chin

MAX_LABEL_CHARACTERS = 160

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
# A clause with one of these is not drawn from (drawing "no hat" would draw a hat).
NEGATION_WORDS = frozenset("no not never without don't dont nothing none avoid".split())
# How far before a garment word its colour may come ("my bright red baseball cap").
COLOR_LOOKBACK_WORDS = 3

_CLAUSE_BREAK = re.compile(r"[.;,!?\n]+")
_CONJUNCTION = re.compile(r"\s+(?:and|but|plus|&)\s+", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


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
    this backend draws; a clause that names none, or any clause after a negation in the same
    sentence, is kept as words for the caption.
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
            is_negated = is_negated or any(word in NEGATION_WORDS for word in words)
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


# --- reference images ---------------------------------------------------------------------


def load_reference_image(path: Path, *, handle: str, keep_alpha: bool = False) -> Image.Image:
    """The image at `path` as RGB (or RGBA when `keep_alpha` and it has transparency), no larger
    than MAX_REFERENCE_SIDE on its longer side.

    Raises ValueError naming the cameo when the file cannot be read or decoded, or is too large
    to decode at all.
    """
    try:
        with Image.open(path) as opened:
            # JPEG only: decodes at a power-of-two reduction, so a huge photo costs little.
            opened.draft("RGB", (MAX_REFERENCE_SIDE, MAX_REFERENCE_SIDE))
            pixels = opened.width * opened.height
            if pixels > MAX_REFERENCE_PIXELS:
                raise _TooLarge(f"{opened.width}x{opened.height}")
            has_alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
            image = ImageOps.exif_transpose(opened)
            image = image.convert("RGBA" if keep_alpha and has_alpha else "RGB")
    except _TooLarge as error:
        raise ValueError(
            f"cameo @{handle}: reference image {path.name} is too large to use ({error})"
        ) from None
    except _DECODE_ERRORS as error:
        raise ValueError(
            f"cameo @{handle}: reference image {path.name} cannot be decoded ({error})"
        ) from error
    if max(image.size) > MAX_REFERENCE_SIDE:
        image.thumbnail((MAX_REFERENCE_SIDE, MAX_REFERENCE_SIDE), Image.Resampling.LANCZOS)
    return image


class _TooLarge(Exception):
    pass


# --- sprites ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Overlay:
    """An image prepared for `_blend`.

    Kept per channel, because numpy blends three-channel arrays several times faster than it
    broadcasts one alpha channel over three, with a scratch buffer so that a blend allocates
    nothing. The image is cut into bands of rows, each with its visible columns and, within
    them, its opaque ones: transparent margins are skipped and opaque middles copied.
    """

    color: np.ndarray  # uint8 (height, width, 3), premultiplied by alpha
    complement: np.ndarray  # uint8 (height, width, 3): 255 - alpha
    scratch: np.ndarray  # uint16 (height, width, 3)
    # (top, bottom, left, solid left, solid right, right) in overlay pixels; right exclusive.
    bands: tuple[tuple[int, int, int, int, int, int], ...]

    @classmethod
    def from_premultiplied(cls, rgba: np.ndarray) -> _Overlay:
        """`rgba`: (height, width, 4) uint8 with premultiplied colour (PIL's "RGBa")."""
        alpha = rgba[..., 3]
        complement = np.empty(rgba.shape[:2] + (3,), dtype=np.uint8)
        np.subtract(255, alpha[..., np.newaxis], out=complement)
        bands = []
        for top in range(0, alpha.shape[0], BAND_ROWS):
            band = alpha[top : top + BAND_ROWS]
            visible = np.flatnonzero(band.max(axis=0))
            if visible.size == 0:
                continue
            left, right = int(visible[0]), int(visible[-1]) + 1
            solid_left, solid_right = _longest_run(band.min(axis=0) == 255)
            if solid_right - solid_left < BAND_ROWS:
                solid_left = solid_right = right  # not worth a separate copy
            bottom = min(alpha.shape[0], top + BAND_ROWS)
            bands.append((top, bottom, left, solid_left, solid_right, right))
        return cls(
            color=np.ascontiguousarray(rgba[..., :3]),
            complement=complement,
            scratch=np.empty(complement.shape, dtype=np.uint16),
            bands=tuple(bands),
        )

    @property
    def width(self) -> int:
        return int(self.complement.shape[1])

    @property
    def height(self) -> int:
        return int(self.complement.shape[0])


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """The longest run of True in a 1-D boolean array, as (start, end); (0, 0) when none."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if starts.size == 0:
        return 0, 0
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest])


def _blend(frame: np.ndarray, overlay: _Overlay, left: int, top: int) -> None:
    """Composite `overlay` over `frame` (in place) with its top-left corner at (left, top)."""
    frame_height, frame_width = frame.shape[:2]
    for (
        band_top,
        band_bottom,
        visible_left,
        solid_left,
        solid_right,
        visible_right,
    ) in overlay.bands:
        y0, y1 = max(0, top + band_top), min(frame_height, top + band_bottom)
        if y1 <= y0:
            continue
        rows = slice(y0 - top, y1 - top)
        for start, end, is_solid in (
            (visible_left, solid_left, False),
            (solid_left, solid_right, True),
            (solid_right, visible_right, False),
        ):
            x0, x1 = max(0, left + start), min(frame_width, left + end)
            if x1 <= x0:
                continue
            region = frame[y0:y1, x0:x1]
            window = (rows, slice(x0 - left, x1 - left))
            if is_solid:
                region[...] = overlay.color[window]
                continue
            # frame x (255 - alpha) / 256 + colour x alpha: exact at alpha 0 and 255, within
            # one level between, and never above 255.
            mixed = overlay.scratch[window]
            np.multiply(region, overlay.complement[window], out=mixed, dtype=np.uint16)
            mixed += 255
            mixed >>= 8
            mixed += overlay.color[window]
            np.copyto(region, mixed, casting="unsafe")


@dataclass(frozen=True, eq=False)
class _ScaledSprite:
    overlay: _Overlay
    anchor_x: float  # the head's (or card's) centre, in sprite pixels
    anchor_y: float
    # The torso continues below the sprite's box down to the frame's bottom edge as copies of
    # this row, over these sprite columns (empty for a character).
    torso_left: int
    torso_row: np.ndarray  # (columns, 3) uint8


@dataclass(frozen=True, eq=False)
class _Master:
    image: Image.Image  # "RGBa" (premultiplied), drawn at `scale` of the cameo's base size
    scale: float
    anchor_x: float
    anchor_y: float
    has_torso: bool

    def cut(self, scale: float) -> _ScaledSprite:
        ratio = scale / self.scale
        size = (max(1, round(self.image.width * ratio)), max(1, round(self.image.height * ratio)))
        # Premultiplied, so the resize needs no conversions and soft edges take no fringe.
        rgba = np.asarray(self.image.resize(size, Image.Resampling.BILINEAR))
        torso_left, torso_row = 0, np.zeros((0, 3), dtype=np.uint8)
        if self.has_torso:
            # The master's last row is all torso (it is drawn to run past the bottom edge).
            solid = np.flatnonzero(rgba[-1, :, 3] == 255)
            if solid.size:
                torso_left = int(solid[0])
                torso_row = rgba[-1, torso_left : int(solid[-1]) + 1, :3].copy()
        return _ScaledSprite(
            overlay=_Overlay.from_premultiplied(rgba),
            anchor_x=self.anchor_x * ratio,
            anchor_y=self.anchor_y * ratio,
            torso_left=torso_left,
            torso_row=torso_row,
        )


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


def _draw_person(
    crop: Image.Image, crop_width: int, crop_height: int, torso_color: RGB, look: Appearance
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
    if look.neckwear is not None:
        _draw_scarf(garments, box, look.neckwear.color or _shade(torso_color, 0.6))
    if look.eyewear is not None:
        _draw_eyewear(garments, box, look.eyewear)
    if look.headwear is not None:
        _draw_headwear(garments, box, look.headwear, default=_shade(torso_color, 0.75))
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


# --- walking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Walk:
    """Where a cameo's anchor is at each moment, and at what scale."""

    start_x: float
    end_x: float
    base_y: float
    lowering: float  # pixels the anchor drops per unit of walk scale
    bob: float  # pixels
    sway: float  # pixels
    phase: float
    depth: float  # BACK_ROW_SCALE for the back row, else 1

    def at(self, seconds: float, progress: float) -> tuple[float, float, float]:
        """(x, y, scale) at `seconds` into the clip, `progress` 0..1 of the way through."""
        eased = progress * progress * (3 - 2 * progress)
        walk_scale = WALK_SCALES[0] + (WALK_SCALES[1] - WALK_SCALES[0]) * eased
        step = math.pi * STEPS_PER_SECOND * seconds + self.phase
        x = self.start_x + (self.end_x - self.start_x) * eased + self.sway * math.sin(step)
        y = (
            self.base_y
            + self.lowering * (walk_scale - WALK_SCALES[0])
            - self.bob * abs(math.sin(step))
        )
        return x, y, self.depth * walk_scale


class _CameoSprite:
    """One cameo: its master drawing, its walk, and the sprite cut for the current bucket."""

    def __init__(self, master: _Master, walk: _Walk) -> None:
        self._master = master
        self.walk = walk
        low, high = (walk.depth * scale for scale in WALK_SCALES)
        height_at_scale_one = master.image.height / master.scale
        steps = math.ceil((high - low) * height_at_scale_one / BUCKET_PIXELS)
        self._scales = np.linspace(low, high, max(2, min(MAX_BUCKETS, steps + 1)))
        self._bucket = -1
        self._sprite: _ScaledSprite | None = None

    def draw(self, frame: np.ndarray, seconds: float, progress: float) -> None:
        x, y, scale = self.walk.at(seconds, progress)
        bucket = int(np.argmin(np.abs(self._scales - scale)))
        if self._sprite is None or bucket != self._bucket:
            self._sprite = self._master.cut(float(self._scales[bucket]))
            self._bucket = bucket
        sprite = self._sprite
        left, top = round(x - sprite.anchor_x), round(y - sprite.anchor_y)
        _blend(frame, sprite.overlay, left, top)
        columns = sprite.torso_row.shape[0]
        if columns:
            frame_height, frame_width = frame.shape[:2]
            x0 = max(0, left + sprite.torso_left)
            x1 = min(frame_width, left + sprite.torso_left + columns)
            y0 = max(0, top + sprite.overlay.height)
            if x1 > x0 and y0 < frame_height:
                start = x0 - left - sprite.torso_left
                frame[y0:, x0:x1] = sprite.torso_row[start : start + x1 - x0]


def _draw_master(
    image: Image.Image, cameo: CameoReference, appearance: Appearance, height: float, depth: float
) -> _Master:
    """`cameo` drawn at its largest size times MASTER_OVERSAMPLE; `height` is the crop's (or
    card's) height at walk scale 1 in the front row."""
    scale = depth * WALK_SCALES[1] * MASTER_OVERSAMPLE
    drawn_height = max(8, round(height * scale))
    drawn_width = max(8, round(drawn_height * image.width / image.height))
    if cameo.kind == "person":
        torso_color = appearance.outfit_color or handle_color(cameo.handle)
        canvas, anchor_x, anchor_y = _draw_person(
            image, drawn_width, drawn_height, torso_color, appearance
        )
        return _Master(canvas.convert("RGBa"), scale, anchor_x, anchor_y, has_torso=True)
    card = _with_alpha(
        image.resize((drawn_width, drawn_height), Image.Resampling.LANCZOS),
        _feathered_card(drawn_width, drawn_height),
    )
    return _Master(card.convert("RGBa"), scale, drawn_width / 2, drawn_height / 2, has_torso=False)


@dataclass(frozen=True)
class _Slot:
    lane_left: float
    lane_width: float
    head_line: float  # the head centre's height, of the frame height, at walk scale 1
    depth: float  # BACK_ROW_SCALE in a back row, else 1


def _slots(count: int, width: int, height: int) -> list[_Slot]:
    """Where each of `count` cameos walks. Lanes are side by side, so heads never overlap,
    except three in a tall frame: the back one's lane spans the middle, above the other two."""
    lane = width / max(1, count)
    front, back = HEAD_CENTRE_LINE, HEAD_CENTRE_LINE - BACK_ROW_LIFT
    if count == 1:
        return [_Slot(0, width, front, 1.0)]
    if count == 2:
        return [_Slot(0, lane, front, 1.0), _Slot(lane, lane, back, BACK_ROW_SCALE)]
    if height > TALL_FRAME * width:
        half = width / 2
        return [
            _Slot(0, half, TALL_FRONT_ROW_LINE, 1.0),
            _Slot(width / 4, half, TALL_BACK_ROW_LINE, BACK_ROW_SCALE),
            _Slot(half, half, TALL_FRONT_ROW_LINE, 1.0),
        ]
    return [
        _Slot(0, lane, front, 1.0),
        _Slot(lane, lane, back, BACK_ROW_SCALE),
        _Slot(2 * lane, lane, front, 1.0),
    ]


def _lane_walk(
    rng: np.random.Generator,
    *,
    lane_left: float,
    lane_width: float,
    width: float,
    height: float,
    centre_y: float,
    depth: float,
) -> _Walk:
    """A walk that keeps a `width` x `height` head (or card, at walk scale 1 in the front row)
    inside its lane at every scale, sway included."""
    sway = SWAY * width * depth
    half_width = width * depth * WALK_SCALES[1] / 2
    low = lane_left + half_width + sway
    high = lane_left + lane_width - half_width - sway
    if high < low:
        low = high = lane_left + lane_width / 2
    span = high - low
    start_x = low + 0.2 * span * float(rng.random())
    end_x = high - 0.2 * span * float(rng.random())
    if rng.random() < 0.5:
        start_x, end_x = end_x, start_x
    return _Walk(
        start_x=start_x,
        end_x=end_x,
        base_y=centre_y,
        lowering=WALK_LOWERING * height,
        bob=BOB * height * depth,
        sway=sway,
        phase=float(rng.uniform(0, 2 * math.pi)),
        depth=depth,
    )


def _label_overlay(lines: list[str], width: int, height: int) -> tuple[_Overlay, int, int]:
    """The preferences no drawing follows, one line per cameo, in a box at the top."""
    font_size = max(11, round(min(width, height) * 0.032))
    font = load_font(font_size)
    padding_x, padding_y = round(font_size * 0.5), round(font_size * 0.3)
    max_text_width = max(font_size, round(width * 0.92) - 2 * padding_x)
    fitted = []
    for line in lines:
        text = line[:MAX_LABEL_CHARACTERS]
        if font.getlength(text) > max_text_width or len(text) < len(line):
            while text and font.getlength(f"{text}…") > max_text_width:
                text = text[:-1]
            text = f"{text.rstrip()}…"
        fitted.append(text)
    ascent, descent = font.getmetrics()
    line_height = round((ascent + descent) * 1.1)
    box_width = min(width, max(round(font.getlength(line)) for line in fitted) + 2 * padding_x)
    box_height = min(height, line_height * len(fitted) + 2 * padding_y)
    image = Image.new("RGBA", (box_width, box_height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (0, 0, box_width - 1, box_height - 1), radius=round(font_size * 0.4), fill=(0, 0, 0, 140)
    )
    for line_index, line in enumerate(fitted):
        draw.text(
            (padding_x, padding_y + line_index * line_height),
            line,
            font=font,
            fill=(255, 255, 255, 255),
        )
    overlay = _Overlay.from_premultiplied(np.asarray(image.convert("RGBa")))
    return overlay, (width - box_width) // 2, round(height * 0.025)


# --- the layer ----------------------------------------------------------------------------


class CameoLayer:
    """Every tagged cameo of one request, ready to be composited into its frames.

    Decodes the reference images when built, so a bad image fails the render before any frame
    is made. `seed` must come from the request (same request, same walks).
    """

    def __init__(
        self, cameos: Sequence[CameoReference], *, width: int, height: int, seed: int
    ) -> None:
        if len(cameos) > MAX_CAMEOS:
            raise ValueError(f"at most {MAX_CAMEOS} cameos can be tagged, got {len(cameos)}")
        self._label: tuple[_Overlay, int, int] | None = None
        count = len(cameos)
        labels: list[str] = []
        placed: list[tuple[float, int, _CameoSprite]] = []
        for index, (cameo, slot) in enumerate(
            zip(cameos, _slots(count, width, height), strict=True)
        ):
            if cameo.kind not in ("person", "character"):
                raise ValueError(f"cameo @{cameo.handle} has unknown kind {cameo.kind!r}")
            if not cameo.images:
                raise ValueError(f"cameo @{cameo.handle} has no reference images")
            is_person = cameo.kind == "person"
            image = load_reference_image(
                cameo.images[0], handle=cameo.handle, keep_alpha=not is_person
            )
            aspect = image.width / image.height
            centre_line = slot.head_line
            if is_person:
                wanted = FACE_SHARE_OF_FRAME[count] * height / FACE_SHARE_OF_CROP
                appearance = parse_preferences(cameo.preferences)
            else:
                wanted = CHARACTER_SHARE_OF_FRAME * height
                centre_line += CARD_BELOW_HEAD
                # A still is not drawn on; every preference is shown in words.
                appearance = Appearance(not_drawn=" ".join(cameo.preferences.split()))
            depth = slot.depth
            widest = LANE_FILL * slot.lane_width / (aspect * WALK_SCALES[1] * depth)
            base_height = min(wanted, widest)
            walk = _lane_walk(
                np.random.default_rng([seed, index]),
                lane_left=slot.lane_left,
                lane_width=slot.lane_width,
                width=base_height * aspect,
                height=base_height,
                centre_y=centre_line * height,
                depth=depth,
            )
            master = _draw_master(image, cameo, appearance, base_height, depth)
            placed.append((depth, index, _CameoSprite(master, walk)))
            if appearance.not_drawn:
                labels.append(f"@{cameo.handle}: {appearance.not_drawn}")
        # The back row is drawn first, so nearer shoulders pass in front of it.
        placed.sort(key=lambda item: (item[0], item[1]))
        self._sprites = [sprite for _, _, sprite in placed]
        if labels:
            self._label = _label_overlay(labels, width, height)

    def composite(
        self, frames: Iterator[np.ndarray], *, fps: int, frame_count: int
    ) -> Iterator[np.ndarray]:
        """Draw the cameos into each frame (in place) and pass it on; `frame_count` is the
        clip's length, which sets how far each walk has got."""
        last = max(1, frame_count - 1)
        for frame_index, frame in enumerate(frames):
            progress = min(1.0, frame_index / last)
            for sprite in self._sprites:
                sprite.draw(frame, frame_index / fps, progress)
            if self._label is not None:
                overlay, left, top = self._label
                _blend(frame, overlay, left, top)
            yield frame
