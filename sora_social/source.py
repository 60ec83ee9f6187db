"""The Corresponding Source of the running server, as AGPL-3.0 s.13 asks of a network service.

`GET /source.tar.gz` answers a tar.gz of the project's own files as they are deployed: the
packages, templates, docker files, the build and licence files. Never `var/` (data, the
generated secret key), the virtualenv, caches, hidden files or key files. The archive is built
once per process, in memory, and is the same bytes for the same files.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

ARCHIVE_ROOT = "sora-social"
ARCHIVE_FILENAME = "sora-social-source.tar.gz"
SOURCE_DIRECTORIES = (
    "sora_social",
    "generation",
    "cameos",
    "moderation",
    "feed",
    "templates",
    "docker",
    "tests",
    "benchmarks",
    ".ci",
)
SOURCE_FILES = (
    "LICENSE",
    "THIRD_PARTY.md",
    "README.md",
    "pyproject.toml",
    "constraints.txt",
    "Makefile",
    "manage.py",
    ".gitignore",
)
_SKIPPED_DIRECTORIES = {"__pycache__", "node_modules"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo", ".pem", ".key", ".sqlite3"}
_SKIPPED_NAMES = {"secret_key"}


def _is_source(path: Path) -> bool:
    name = path.name
    return not (
        name.startswith(".")
        or name in _SKIPPED_NAMES
        or path.suffix in _SKIPPED_SUFFIXES
        or path.is_symlink()
    )


def source_files(base_dir: Path) -> Iterator[Path]:
    """The project's own files under `base_dir`, in a fixed order; absent ones are skipped (an
    image holds fewer than a checkout)."""
    for name in SOURCE_FILES:
        path = base_dir / name
        if path.is_file() and not path.is_symlink():
            yield path
    for directory in SOURCE_DIRECTORIES:
        top = base_dir / directory
        if not top.is_dir() or top.is_symlink():
            continue
        for folder_name, subfolders, files in os.walk(top):
            folder = Path(folder_name)
            subfolders[:] = sorted(
                name
                for name in subfolders
                if name not in _SKIPPED_DIRECTORIES
                and not name.startswith(".")
                and not name.endswith(".egg-info")
                and not (folder / name).is_symlink()
            )
            for name in sorted(files):
                if _is_source(folder / name):
                    yield folder / name


def build_source_archive(base_dir: Path) -> bytes:
    """A reproducible tar.gz: sorted entries, no timestamps, owners or local permissions."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in source_files(base_dir):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{ARCHIVE_ROOT}/{path.relative_to(base_dir).as_posix()}")
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@functools.cache
def running_source_archive() -> bytes:
    return build_source_archive(Path(settings.BASE_DIR))


class _IgnoreAcceptHeader(BaseContentNegotiation):
    """The archive is the only representation; errors take the API's renderer (JSON)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class SourceCodeView(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()
    content_negotiation_class = _IgnoreAcceptHeader

    @extend_schema(
        operation_id="source_code",
        tags=["licence"],
        summary="The source code of this server",
        description="A tar.gz of the running version's source (AGPL-3.0-or-later, section 13): "
        "the project's packages, templates, docker files, LICENSE, THIRD_PARTY.md and build "
        "files. Needs no authentication.",
        auth=[],
        responses={
            (200, "application/gzip"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description=f"A gzip-compressed tar archive whose entries sit under "
                f"`{ARCHIVE_ROOT}/`.",
            )
        },
    )
    def get(self, request: Request) -> HttpResponse:
        response = HttpResponse(running_source_archive(), content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{ARCHIVE_FILENAME}"'
        return response
