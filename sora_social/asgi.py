import os
from typing import Any

import django
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")
django.setup(set_prefix=False)


class OneThreadASGIHandler(ASGIHandler):
    """Run every request's sync code on the process's one sync thread, one at a time.

    Django's handler gives each request a thread of its own; under load that means dozens of
    threads fighting for the GIL in each process, which costs more CPU than the views
    themselves. Scaling comes from more server processes (WEB_CONCURRENCY) instead.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)


# Static files (admin, API docs) come straight from the apps' static folders; every middleware
# is async-capable, so a request crosses into a sync thread once, for its view.
django_asgi_app = ASGIStaticFilesHandler(OneThreadASGIHandler())

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from sora_social.consumers import UserEventsConsumer  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Refuse cross-site browser pages (their Origin is checked against ALLOWED_HOSTS).

    A handshake with no Origin comes from a non-browser client (the mobile app, a script); it
    authenticates with a bearer token, which another site cannot make it send.
    """

    def valid_origin(self, parsed_origin):  # type: ignore[no-untyped-def]
        return parsed_origin is None or super().valid_origin(parsed_origin)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/events", UserEventsConsumer.as_asgi())])),
            settings.ALLOWED_HOSTS,
        ),
    }
)
