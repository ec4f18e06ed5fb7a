"""The floor for any Python relay: a minimal pass-through `websockets` relay (no auth, no
parsing on the Gemini path; on `/ws/live/` the least translation, bench/webwire.py).

python -m bench.bare_relay --port 9200 --upstream ws://127.0.0.1:9100
"""

import argparse
import asyncio
import contextlib

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from bench import webwire
from bench.servers import BACKLOG


async def pump(source, sink, translate=None) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in source:
            if translate is not None:
                message = translate(message)
                if message is None:
                    continue
            await sink.send(message)


async def main(port: int, upstream: str) -> None:
    async def handler(client):
        path = client.request.path
        web = path.startswith(webwire.WEB_PATH)
        if web:
            await client.recv()  # `start`
        async with connect(
            upstream + webwire.upstream_path(path),
            compression=None,
            max_size=16 * 2**20,
            ping_interval=None,
            additional_headers={"x-goog-api-key": "bench"},
        ) as server:
            if web:
                await server.send(webwire.SETUP)
                while "setupComplete" not in orjson.loads(await server.recv()):
                    pass
                await client.send(webwire.READY)
            tasks = [
                asyncio.create_task(pump(client, server, webwire.to_upstream if web else None)),
                asyncio.create_task(pump(server, client, webwire.to_client if web else None)),
            ]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=16 * 2**20,
        ping_interval=None,
        backlog=BACKLOG,
    ):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.upstream))
