"""The floor for any Python relay: a minimal pass-through `websockets` relay (no auth, no parsing).

python -m bench.bare_relay --port 9200 --upstream ws://127.0.0.1:9100
"""

import argparse
import asyncio
import contextlib

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def pump(source, sink) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in source:
            await sink.send(message)


async def main(port: int, upstream: str) -> None:
    async def handler(client):
        path = client.request.path
        async with connect(
            upstream + path,
            compression=None,
            max_size=16 * 2**20,
            ping_interval=None,
            additional_headers={"x-goog-api-key": "bench"},
        ) as server:
            tasks = [
                asyncio.create_task(pump(client, server)),
                asyncio.create_task(pump(server, client)),
            ]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    async with serve(
        handler, "127.0.0.1", port, compression=None, max_size=16 * 2**20, ping_interval=None
    ):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.upstream))
