"""What a render needs of the cameos a job declared (listed in settings.RENDER_INPUTS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cameos.crypto import read_sealed
from cameos.models import Appearance
from generation.backends import CameoReference
from generation.models import VideoJob
from generation.rendering import PermanentRenderError


def cameo_render_inputs(job: VideoJob, workdir: Path) -> dict[str, Any]:
    """Decrypt each tagged cameo's references into `workdir` (the render's private folder).

    A cameo that stopped being usable after the request (revoked, expired) fails the job.
    """
    appearances = (
        Appearance.objects.filter(video=job, source=Appearance.Source.TAGGED)
        .select_related("cameo")
        .order_by("tag_position", "pk")
    )
    references = []
    for appearance in appearances:
        cameo = appearance.cameo
        if not cameo.is_usable:
            raise PermanentRenderError(
                "cameo_unavailable", f"@{cameo.handle} can no longer appear in videos."
            )
        images = []
        for reference in cameo.references.order_by("position"):
            path = workdir / f"cameo-{cameo.pk}-{reference.position}.png"
            path.write_bytes(read_sealed(reference.file))
            images.append(path)
        vectors = tuple(
            np.asarray(vector.embedding, dtype=np.float32)
            for vector in cameo.face_vectors.filter(engine=cameo.face_engine).order_by("pk")
        )
        references.append(
            CameoReference(
                handle=cameo.handle,
                kind=cameo.kind,
                display_name=cameo.name,
                images=tuple(images),
                embeddings=vectors,
                embedding_engine=cameo.face_engine,
                preferences=cameo.preferences,
            )
        )
    return {"cameos": tuple(references)} if references else {}
