"""Tagged cameos composited into the reference backend's frames.

Each cameo (drawn by `cameo_appearance`: a person's face crop on drawn shoulders, or a
character's still as a card) walks its own lane: a smooth path across the lane drawn from the
request hash, a bob per step, a sway per stride, and a slow growth as if walking nearer. Lanes
are side by side and sized so that heads never overlap; with two or three cameos one walks a
little further back, and three in a tall frame stand in two rows. Faces are about a fifth of the
frame height (less when three share a narrow frame), the size of a person in a selfie clip, and
well above the ~80 px a HOG detector needs at 720p. Preferences no drawing follows are shown in
a caption line at the top ("@maya: always smiling").

Speed: each cameo is drawn once, larger than it will ever be shown (the "master"); per scale
bucket the master is resized once into premultiplied per-channel arrays, and a frame costs an
integer blend of the sprite's visible bands plus a slice fill for the torso below the sprite.
Scale only grows during a clip, so a bucket is never revisited and only the current one is kept.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from generation.backends.base import CameoReference
from generation.backends.cameo_appearance import (
    FACE_SHARE_OF_CROP,
    Appearance,
    draw_card,
    draw_person,
    handle_color,
    parse_preferences,
)
from generation.media.encode import load_font

MAX_CAMEOS = 3
# Reference images are downscaled to this on their longer side: the largest sprite a 1792 px
# frame needs is smaller, and it bounds the memory an oversized upload can cost.
MAX_REFERENCE_SIDE = 1024
# Refused rather than decoded (JPEGs are measured after draft-mode reduction): 64 MP of RGBA is
# 256 MB, too much for a worker to spend on a reference image.
MAX_REFERENCE_PIXELS = 64_000_000

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
MAX_BUCKETS = 8
# The master is drawn this much larger than the largest bucket, so every bucket is a downscale
# and the drawn shapes come out anti-aliased.
MASTER_OVERSAMPLE = 1.15
BAND_ROWS = 32  # overlays are cut into bands of this many rows (see `_Overlay`)
MAX_LABEL_CHARACTERS = 160

_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


# --- reference images ---------------------------------------------------------------------


def load_reference_image(path: Path, *, handle: str, keep_alpha: bool = False) -> Image.Image:
    """The image at `path` as RGB (or RGBA when `keep_alpha` and it has transparency), no larger
    than MAX_REFERENCE_SIDE on its longer side.

    Raises ValueError naming the cameo when the file cannot be read or decoded, or is too large
    to decode at all.
    """
    try:
        opened = Image.open(path)
    except _DECODE_ERRORS as error:
        raise _undecodable(handle, path, error) from error
    with opened:
        # JPEG only: decodes at a power-of-two reduction, so a huge photo costs little.
        opened.draft("RGB", (MAX_REFERENCE_SIDE, MAX_REFERENCE_SIDE))
        if opened.width * opened.height > MAX_REFERENCE_PIXELS:
            raise ValueError(
                f"cameo @{handle}: reference image {path.name} is too large to use "
                f"({opened.width}x{opened.height})"
            )
        has_alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        try:
            image = ImageOps.exif_transpose(opened).convert(
                "RGBA" if keep_alpha and has_alpha else "RGB"
            )
        except _DECODE_ERRORS as error:
            raise _undecodable(handle, path, error) from error
    if max(image.size) > MAX_REFERENCE_SIDE:
        image.thumbnail((MAX_REFERENCE_SIDE, MAX_REFERENCE_SIDE), Image.Resampling.LANCZOS)
    return image


def _undecodable(handle: str, path: Path, error: Exception) -> ValueError:
    return ValueError(f"cameo @{handle}: reference image {path.name} cannot be decoded ({error})")


# --- sprites ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Piece:
    """A rectangle of an overlay: copied when opaque, else blended.

    Kept per channel and contiguous, because numpy blends such arrays several times faster
    than it broadcasts one alpha channel over three; the scratch buffer means a blend allocates
    nothing.
    """

    top: int  # in overlay pixels
    left: int
    color: np.ndarray  # uint8 (height, width, 3), premultiplied by alpha
    complement: np.ndarray | None  # uint8 (height, width, 3): 255 - alpha; None when opaque
    scratch: np.ndarray | None  # uint16 (height, width, 3)


@dataclass(frozen=True, eq=False)
class _Overlay:
    """An image prepared for `_blend`: cut into bands of rows, each band into its visible
    columns' opaque middle (copied) and soft sides (blended); transparent margins are left out.
    """

    width: int
    height: int
    pieces: tuple[_Piece, ...]

    @classmethod
    def from_premultiplied(cls, rgba: np.ndarray) -> _Overlay:
        """`rgba`: (height, width, 4) uint8 with premultiplied colour (PIL's "RGBa")."""
        height, width = rgba.shape[:2]
        alpha = rgba[..., 3]
        pieces = []
        for top in range(0, height, BAND_ROWS):
            bottom = min(height, top + BAND_ROWS)
            band = alpha[top:bottom]
            visible = np.flatnonzero(band.max(axis=0))
            if visible.size == 0:
                continue
            left, right = int(visible[0]), int(visible[-1]) + 1
            solid_left, solid_right = _longest_run(band[:, left:right].min(axis=0) == 255)
            solid_left, solid_right = left + solid_left, left + solid_right
            if solid_right - solid_left < BAND_ROWS:
                solid_left = solid_right = right  # too narrow to be worth a separate copy
            for start, end, is_opaque in (
                (left, solid_left, False),
                (solid_left, solid_right, True),
                (solid_right, right, False),
            ):
                if end > start:
                    pieces.append(_piece(rgba[top:bottom, start:end], top, start, is_opaque))
        return cls(width=width, height=height, pieces=tuple(pieces))


def _piece(rgba: np.ndarray, top: int, left: int, is_opaque: bool) -> _Piece:
    color = np.ascontiguousarray(rgba[..., :3])
    if is_opaque:
        return _Piece(top, left, color, None, None)
    complement = np.empty(color.shape, dtype=np.uint8)
    np.subtract(255, rgba[..., 3:4], out=complement)
    return _Piece(top, left, color, complement, np.empty(color.shape, dtype=np.uint16))


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
    for piece in overlay.pieces:
        piece_top, piece_left = top + piece.top, left + piece.left
        piece_height, piece_width = piece.color.shape[:2]
        y0, y1 = max(0, piece_top), min(frame_height, piece_top + piece_height)
        x0, x1 = max(0, piece_left), min(frame_width, piece_left + piece_width)
        if y1 <= y0 or x1 <= x0:
            continue
        region = frame[y0:y1, x0:x1]
        window = (slice(y0 - piece_top, y1 - piece_top), slice(x0 - piece_left, x1 - piece_left))
        if piece.complement is None or piece.scratch is None:
            region[...] = piece.color[window]
            continue
        # frame x (255 - alpha) / 256 + colour x alpha: exact at alpha 0 and 255, within one
        # level between, and never above 255 (the premultiplied colour is at most alpha).
        mixed = piece.scratch[window]
        np.multiply(region, piece.complement[window], out=mixed, dtype=np.uint16)
        mixed += 255
        mixed >>= 8
        mixed += piece.color[window]
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
        canvas, anchor_x, anchor_y = draw_person(
            image, drawn_width, drawn_height, torso_color, appearance
        )
        return _Master(canvas.convert("RGBa"), scale, anchor_x, anchor_y, has_torso=True)
    card = draw_card(image, drawn_width, drawn_height)
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
    if count == 0:
        return []
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
