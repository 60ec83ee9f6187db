"""Video backends and the per-process registry that hands them out."""

from __future__ import annotations

from generation.backends.base import CameoReference, RenderedClip, RenderRequest, VideoBackend
from sora_social.loaded import LoadedOnce

__all__ = [
    "BACKEND_NAMES",
    "CameoReference",
    "RenderRequest",
    "RenderedClip",
    "VideoBackend",
    "get_backend",
]

# The `diffusers` backend (torch, a local model folder on GPU workers) is the next one to add;
# until it exists, asking for it fails at the first render with the list of valid names.
BACKEND_NAMES = ("reference",)

def get_backend(name: str | None = None) -> VideoBackend:
    """The process-wide instance of backend `name` (default: `settings.VIDEO_BACKEND`)."""
    if name is None:
        from django.conf import settings

        name = settings.VIDEO_BACKEND
    return _backends.get(name)


def _build_backend(name: str) -> VideoBackend:
    # Imported here so that a worker only pays for (and only needs the dependencies of) the
    # backend it uses.
    from generation.backends.reference import ReferenceBackend

    return ReferenceBackend()


_backends: LoadedOnce[VideoBackend] = LoadedOnce("video backend", BACKEND_NAMES, _build_backend)
