"""Template context every page shares."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def source_code(request: HttpRequest) -> dict[str, str]:
    """Where the footer's "Source code" link points: SOURCE_CODE_URL, else this server's own
    archive of the running version (AGPL-3.0 s.13)."""
    return {"source_code_url": settings.SOURCE_CODE_URL or reverse("source-code")}
