"""Every /v1 endpoint is in the OpenAPI schema, with its responses and errors."""

from __future__ import annotations

import io

from django.core.management import call_command
from rest_framework.test import APIClient

V1_OPERATIONS = {
    ("/v1/videos", "post"): {"200", "400", "401", "403", "409", "429", "503"},
    ("/v1/videos", "get"): {"200", "400", "401", "503"},
    ("/v1/videos/{video_id}", "get"): {"200", "401", "404", "503"},
    ("/v1/videos/{video_id}", "delete"): {"200", "401", "404", "503"},
    ("/v1/videos/{video_id}/remix", "post"): {
        "200", "400", "401", "403", "404", "409", "410", "429", "503"
    },
    ("/v1/videos/characters", "post"): {"200", "400", "401", "422", "503"},
    ("/v1/videos/characters/{character_id}", "get"): {"200", "401", "404", "503"},
    ("/v1/videos/{video_id}/content", "get"): {
        "200", "206", "302", "400", "401", "404", "409", "410", "416", "503"
    },
}


def test_every_v1_operation_is_described_with_its_errors() -> None:
    schema = APIClient().get("/api/schema", HTTP_ACCEPT="application/json").json()

    described = {
        (path, method): set(operation["responses"])
        for path, operations in schema["paths"].items() if path.startswith("/v1/")
        for method, operation in operations.items()
    }
    assert described == V1_OPERATIONS
    error = schema["paths"]["/v1/videos"]["post"]["responses"]["429"]["content"]
    assert error["application/json"]["schema"]["$ref"] == "#/components/schemas/OpenAIError"
    assert schema["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"


def test_the_schema_is_valid_openapi_with_no_generator_warnings() -> None:
    output = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=output)

    assert output.getvalue().startswith("openapi: 3")
