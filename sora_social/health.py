"""GET /healthz: is every part this service needs up? 200 if so, 503 naming what is not."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from sora_social.celery import WORKER_BEACON_PREFIX
from sora_social.redis import redis_client

REQUIRED_QUEUES = ("gpu", "default")


def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as error:
        checks["database"] = {"ok": False, "error": type(error).__name__}

    beacons: list[str] = []
    try:
        client = redis_client()
        client.ping()
        beacons = [key.decode() for key in client.scan_iter(f"{WORKER_BEACON_PREFIX}*", count=500)]
        checks["redis"] = {"ok": True}
    except Exception as error:
        checks["redis"] = {"ok": False, "error": type(error).__name__}

    for queue in REQUIRED_QUEUES:
        prefix = f"{WORKER_BEACON_PREFIX}{queue}:"
        workers = sorted(key[len(prefix):] for key in beacons if key.startswith(prefix))
        checks[f"workers.{queue}"] = {"ok": bool(workers), "workers": workers}

    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
    return JsonResponse(body, status=200 if not failing else 503)
