"""The framework's own cost (bench setup "channels"): a minimal Channels consumer that accepts,
connects upstream with `websockets` and copies frames both ways, nothing else, served by the
same ASGI server as Pastra. Pastra ÷ this is Pastra's own cost; this ÷ the bare relay is
Channels' and the server's.

    BENCH_UPSTREAM=ws://127.0.0.1:9100 daphne -p 9300 bench.channels_relay:application

Settings are the minimum Channels needs (no database, no apps of Pastra's), configured when
the server imports this module, as an ASGI entry point's `asgi.py` does.
"""

import asyncio
import contextlib
import os

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["channels"],
        DATABASES={},
        SECRET_KEY="bench-channels-relay",  # noqa: S106 (signs nothing)
        CHANNEL_LAYERS={},
        USE_TZ=True,
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "ws://127.0.0.1:9100")
MAX_BYTES = 16 * 2**20


class RelayConsumer(AsyncWebsocketConsumer):
    upstream = None
    pump: asyncio.Task | None = None

    async def connect(self):
        query = self.scope.get("query_string", b"").decode()
        url = UPSTREAM + self.scope["path"] + (f"?{query}" if query else "")
        self.upstream = await connect(
            url,
            compression=None,
            max_size=MAX_BYTES,
            ping_interval=None,
            additional_headers={"x-goog-api-key": "bench"},
        )
        await self.accept()
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.upstream:
                if isinstance(message, bytes):
                    await self.send(bytes_data=message)
                else:
                    await self.send(text_data=message)
        await self.close()

    async def receive(self, text_data=None, bytes_data=None):
        with contextlib.suppress(ConnectionClosed):
            await self.upstream.send(text_data if text_data is not None else bytes_data)

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
        if self.upstream is not None:
            await self.upstream.close()


application = RelayConsumer.as_asgi()
