"""WebSocket /ws/events: a signed-in user's live job events, and only theirs."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from sora_social.accounts.actions import authenticate_secret
from sora_social.accounts.authentication import bearer_secret
from sora_social.events import user_group_name


@database_sync_to_async
def _user_for_bearer(header: str) -> Any:
    secret = bearer_secret(header)
    api_key = authenticate_secret(secret) if secret else None
    return api_key.user if api_key else None


class UserEventsConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            headers = dict(self.scope.get("headers", []))
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            user = await _user_for_bearer(authorization) if authorization else None
        if user is None:
            await self.close(code=4401)
            return
        self.group_name = user_group_name(user.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": {"id": user.pk, "handle": user.handle}})

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def user_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
