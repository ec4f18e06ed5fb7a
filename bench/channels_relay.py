"""The framework's own cost (bench setup "channels"): a minimal Channels consumer that accepts,
connects upstream with `websockets` and copies frames both ways (on `/ws/live/` with the least
translation, bench/webwire.py), nothing else, served by the same ASGI server as Pastra.
Pastra ÷ this is Pastra's own cost; this ÷ the bare relay is Channels' and the server's.

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

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench import webwire

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "ws://127.0.0.1:9100")
MAX_BYTES = 16 * 2**20


class RelayConsumer(AsyncWebsocketConsumer):
    upstream = None
    pump: asyncio.Task | None = None
    web = False

    async def connect(self):
        self.web = self.scope["path"].startswith(webwire.WEB_PATH)
        if self.web:
            await self.accept()  # the upstream opens at `start`
        else:
            await self._open()
            await self.accept()
            self.pump = asyncio.create_task(self._pump())

    async def _open(self) -> None:
        query = self.scope.get("query_string", b"").decode()
        path = webwire.upstream_path(self.scope["path"])
        self.upstream = await connect(
            UPSTREAM + path + (f"?{query}" if query else ""),
            compression=None,
            max_size=MAX_BYTES,
            ping_interval=None,
            additional_headers={"x-goog-api-key": "bench"},
        )
        if self.web:
            await self.upstream.send(webwire.SETUP)
            while "setupComplete" not in orjson.loads(await self.upstream.recv()):
                pass
            await self.send(text_data=webwire.READY)

    async def _pump(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.upstream:
                if self.web:
                    if (audio := webwire.to_client(message)) is not None:
                        await self.send(bytes_data=audio)
                elif isinstance(message, bytes):
                    await self.send(bytes_data=message)
                else:
                    await self.send(text_data=message)
        await self.close()

    async def receive(self, text_data=None, bytes_data=None):
        message = text_data if text_data is not None else bytes_data
        if self.web:
            if self.upstream is None:  # `start`
                await self._open()
                self.pump = asyncio.create_task(self._pump())
                return
            message = webwire.to_upstream(message)
            if message is None:
                return
        with contextlib.suppress(ConnectionClosed):
            await self.upstream.send(message)

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
        if self.upstream is not None:
            await self.upstream.close()


application = RelayConsumer.as_asgi()
