"""The built-in emulator: with no PASTRA_UPSTREAM_URL (and no key), each event loop lazily
starts one in-process gemini_emulator on 127.0.0.1 and an ephemeral port. This is how
`make run` works offline. Tunable with the emulator's own EMULATOR_* variables."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

_servers: dict[asyncio.AbstractEventLoop, asyncio.Future] = {}


async def url() -> str:
    loop = asyncio.get_running_loop()
    future = _servers.get(loop)
    if future is None:
        future = loop.create_future()
        _servers[loop] = future
        try:
            server = await _start()
        except BaseException as exc:
            del _servers[loop]
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent waiters get it from `await`
            raise
        future.set_result(server)
    server = await asyncio.shield(future)
    return server.url


async def _start():
    from gemini_emulator import EmulatorConfig, EmulatorServer

    config = EmulatorConfig.from_env(host="127.0.0.1", port=0, api_key="")
    server = EmulatorServer(config)
    await server.start()
    logger.info("built-in Gemini Live emulator on %s", server.url)
    return server
