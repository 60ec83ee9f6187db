"""Face images that ship in installed packages, for tests: RGB uint8 arrays, loaded once.

    astronaut()           scikit-image's astronaut, 512x512, one face (and a mission patch
                          that dlib's HOG alone mistakes for a second one)
    group_photo()         insightface's t1.jpg, 1280x886, six people
    group_photo_face(i)   a crop of group_photo() around person i (0 = leftmost, up to 5), with
                          exactly one face in it
    tom_hanks()           insightface's 112x112 aligned face crop
    video_frame()         a 1280x720 frame cut from group_photo(): six faces of 88-126 px

Every array is shared by all tests and read-only: `.copy()` one before drawing on it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from cameos.faces.calibration import GROUP_PHOTO_FACES, astronaut, group_photo, tom_hanks

__all__ = [
    "GROUP_PHOTO_FACES",
    "astronaut",
    "group_photo",
    "group_photo_face",
    "tom_hanks",
    "video_frame",
]

# Half the side of a group_photo_face() crop, in face widths: wide enough for the whole head,
# narrow enough to keep the neighbours' faces out.
_CROP_HALF_SIDE = 1.2


@cache
def group_photo_face(index: int) -> np.ndarray:
    """A square crop (about 2.4 face widths) around person `index` of the group photo."""
    (centre_x, centre_y), size = GROUP_PHOTO_FACES[index]
    image = group_photo()
    half = _CROP_HALF_SIDE * size
    top = max(0, round(centre_y - half))
    left = max(0, round(centre_x - half))
    bottom = min(image.shape[0], round(centre_y + half))
    right = min(image.shape[1], round(centre_x + half))
    return _read_only(image[top:bottom, left:right].copy())


@cache
def video_frame() -> np.ndarray:
    """A 1280x720 frame of group_photo(): rows 40 to 759, which hold all six faces whole."""
    return _read_only(group_photo()[40:760].copy())


def _read_only(image: np.ndarray) -> np.ndarray:
    image.flags.writeable = False
    return image
