"""Video backends and the per-process registry that hands them out."""

from __future__ import annotations

import threading

from generation.backends.base import CameoReference, RenderedClip, RenderRequest, VideoBackend

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

_backends: dict[str, VideoBackend] = {}
_backends_lock = threading.Lock()


def get_backend(name: str | None = None) -> VideoBackend:
    """The process-wide instance of backend `name` (default: `settings.VIDEO_BACKEND`).

    A backend may load model weights when constructed, so each one is built at most once per
    process; the lock stops two threads from both building it.
    """
    if name is None:
        from django.conf import settings

        name = settings.VIDEO_BACKEND
    if name not in BACKEND_NAMES:
        valid = ", ".join(BACKEND_NAMES)
        raise ValueError(f"unknown video backend {name!r}; choose one of {valid}")
    with _backends_lock:
        backend = _backends.get(name)
        if backend is None:
            backend = _build_backend(name)
            _backends[name] = backend
        return backend


def _build_backend(name: str) -> VideoBackend:
    # Imported here so that a worker only pays for (and only needs the dependencies of) the
    # backend it uses.
    from generation.backends.reference import ReferenceBackend

    return ReferenceBackend()
