"""How the OpenAPI schema describes this project's authentication."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
    target_class = "sora_social.accounts.authentication.BearerKeyAuthentication"
    name = "bearerKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, or the token the mobile app's login returns: "
            "`Authorization: Bearer KEY`.",
        }
