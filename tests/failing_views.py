"""A URLconf for tests: the project's URLs and error handlers, plus views that fail the ways
real views fail when something breaks (a bug, the database down, the broker down)."""

from __future__ import annotations

import kombu.exceptions
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path

from sora_social.urls import handler400, handler403, handler404, handler500
from sora_social.urls import urlpatterns as project_urlpatterns

SECRET_DETAIL = "password=hunter2 at db.internal:5432"


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"a bug that must not leak: {SECRET_DETAIL}")


def database_down(request: HttpRequest) -> HttpResponse:
    raise OperationalError(
        f'connection to server at "127.0.0.1", port 1 failed: Connection refused ({SECRET_DETAIL})'
    )


def broker_down(request: HttpRequest) -> HttpResponse:
    raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:1. Refused.")


urlpatterns = [
    path("v1/test/crash", crash),
    path("v1/test/database-down", database_down),
    path("v1/test/broker-down", broker_down),
    path("api/test/crash", crash),
    path("api/test/database-down", database_down),
    path("test/crash", crash),
    path("test/database-down", database_down),
    *project_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
