import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sora_social.settings")
django_asgi_app = get_asgi_application()

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
