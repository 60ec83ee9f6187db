"""Cameos for tests, built through the real actions with real faces from package images."""

from __future__ import annotations

import numpy as np

from cameos.actions.checks import do_verify_cameo
from cameos.actions.registration import do_start_registration
from cameos.consent import NOTICE_VERSION
from cameos.faces import get_engine
from cameos.liveness.check import ReferenceFace
from cameos.models import Cameo
from sora_social.accounts.models import User
from tests.cameos.images import astronaut

CROP_MARGIN = 0.35


def reference_face(image: np.ndarray) -> ReferenceFace:
    """The best face of `image`, cropped with a margin, and its embedding."""
    engine = get_engine()
    face = engine.detect(image)[0]
    left, top, right, bottom = face.box
    margin_x, margin_y = (right - left) * CROP_MARGIN, (bottom - top) * CROP_MARGIN
    height, width = image.shape[:2]
    crop = image[
        max(0, int(top - margin_y)) : min(height, int(bottom + margin_y)),
        max(0, int(left - margin_x)) : min(width, int(right + margin_x)),
    ]
    return ReferenceFace(
        image=np.ascontiguousarray(crop), embedding=engine.embed(image, face), time=0.0
    )


def registered_cameo(
    user: User,
    image: np.ndarray | None = None,
    *,
    audience: str = Cameo.Audience.ONLY_ME,
    rules: list[str] | None = None,
) -> Cameo:
    """`user`'s person cameo, consented and verified with the face in `image` (the astronaut
    by default), as the check worker leaves it after a passing recording."""
    challenge = do_start_registration(user, notice_version=NOTICE_VERSION, client="tests")
    cameo = challenge.cameo
    do_verify_cameo(None, cameo, [reference_face(astronaut() if image is None else image)],
                    get_engine())
    Cameo.objects.filter(pk=cameo.pk).update(audience=audience, rules=rules or [])
    return Cameo.objects.get(pk=cameo.pk)
