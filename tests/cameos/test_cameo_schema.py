"""Every cameo endpoint is in the OpenAPI schema with its error responses."""

from __future__ import annotations

from rest_framework.test import APIClient

CAMEO_OPERATIONS = {
    ("/api/cameos", "get"): {"200", "401"},
    ("/api/cameos/consent-notice", "get"): {"200"},
    ("/api/cameos/registrations", "post"): {"201", "400", "401", "409"},
    ("/api/cameos/registrations/{challenge_id}/recording", "post"): {
        "202", "400", "401", "404", "409", "422"
    },
    ("/api/cameos/checks/{check_id}", "get"): {"200", "401", "404"},
    ("/api/cameos/{cameo_id}", "get"): {"200", "401", "404"},
    ("/api/cameos/{cameo_id}", "patch"): {"200", "400", "401", "404"},
    ("/api/cameos/{cameo_id}/events", "get"): {"200", "401", "404"},
    ("/api/cameos/{cameo_id}/access", "get"): {"200", "401", "404"},
    ("/api/cameos/{cameo_id}/access/{handle}", "put"): {"204", "400", "401", "404"},
    ("/api/cameos/{cameo_id}/access/{handle}", "delete"): {"204", "401", "404"},
    ("/api/cameos/{cameo_id}/audit-log", "get"): {"200", "400", "401", "404"},
    ("/api/cameos/{cameo_id}/revoke", "post"): {"202", "401", "404"},
    ("/api/cameos/{cameo_id}/receipt", "get"): {"200", "401", "404"},
    ("/api/appearances", "get"): {"200", "400", "401"},
    ("/api/appearances/{appearance_id}", "get"): {"200", "401", "404"},
    ("/api/appearances/{appearance_id}/approve", "post"): {"200", "401", "404", "409"},
    ("/api/appearances/{appearance_id}/decline", "post"): {"200", "401", "404", "409"},
    ("/api/appearances/{appearance_id}/remove", "post"): {"200", "401", "404"},
}


def test_every_cameo_operation_is_described_with_its_errors() -> None:
    schema = APIClient().get("/api/schema", HTTP_ACCEPT="application/json").json()

    described = {
        (path, method): set(operation["responses"])
        for path, operations in schema["paths"].items()
        if path.startswith(("/api/cameos", "/api/appearances"))
        for method, operation in operations.items()
    }
    assert described == CAMEO_OPERATIONS
    refusal = schema["paths"]["/api/cameos/registrations/{challenge_id}/recording"]["post"]
    error = refusal["responses"]["422"]["content"]["application/json"]["schema"]
    assert error["$ref"] == "#/components/schemas/ApiError"
