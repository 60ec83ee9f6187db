"""Benchmark-only endpoints, mounted only with BENCH_ENDPOINTS=true (never in production).

`POST /bench/rows` is the floor that `POST /v1/videos` is measured against: the same stack
(uvicorn, Django, DRF, the same Bearer API-key authentication and multipart parsing) doing the
least a create can do, inserting one row. Its table is not a model, so no migration ships it:
the benchmark creates it with `create_bench_rows_table()` before sending any load.
"""

from __future__ import annotations

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sora_social.accounts.authentication import request_user


def create_bench_rows_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TABLE IF NOT EXISTS bench_rows (
                id bigserial PRIMARY KEY,
                user_id bigint NOT NULL,
                prompt text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )


def truncate_bench_rows_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bench_rows")


class BenchRowView(APIView):
    """Authentication and permissions are the project defaults, as for the /v1 views."""

    parser_classes = (MultiPartParser, FormParser, JSONParser)

    @extend_schema(
        summary="Benchmark only: insert one row",
        description="Mounted only with BENCH_ENDPOINTS=true. The baseline that the create "
        "throughput of POST /v1/videos is compared with.",
        request=inline_serializer("BenchRowRequest", {"prompt": serializers.CharField()}),
        responses={
            201: inline_serializer(
                "BenchRow", {"id": serializers.IntegerField(), "object": serializers.CharField()}
            )
        },
    )
    def post(self, request: Request) -> Response:
        # Deliberately no serializer, action or transaction block: this measures the framework's
        # floor, one parametrised statement in autocommit, nothing the create endpoint adds.
        prompt = str(request.data.get("prompt", ""))
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_rows (user_id, prompt) VALUES (%s, %s) RETURNING id",
                [request_user(request).pk, prompt],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id, "object": "bench.row"}, status=status.HTTP_201_CREATED)
