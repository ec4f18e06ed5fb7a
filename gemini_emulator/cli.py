"""Command line shared by `python -m gemini_emulator` and `manage.py gemini_emulator`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from .config import MODES, EmulatorConfig
from .server import EmulatorServer

DEFAULT_PORT = 9100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 9100; 0 = any)")
    parser.add_argument("--tls-cert", default=None, help="PEM certificate: serve wss://")
    parser.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    parser.add_argument("--mode", choices=MODES, default=None, help="script (default) or echo")
    parser.add_argument("--api-key", default=None, help="required key (default: any key)")


def config_from_options(options: Mapping[str, Any]) -> EmulatorConfig:
    """EMULATOR_* environment, then the command-line options on top (port 9100 unless set)."""
    overrides: dict[str, Any] = {} if os.environ.get("EMULATOR_PORT") else {"port": DEFAULT_PORT}
    for option in ("host", "port", "tls_cert", "tls_key", "mode", "api_key"):
        if options.get(option) is not None:
            overrides[option] = options[option]
    return EmulatorConfig.from_env(**overrides)


def serve(config: EmulatorConfig, announce: Callable[[str], None]) -> None:
    """Run until SIGINT/SIGTERM; `announce` gets one line with the URL once bound."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_serve(config, announce))


async def _serve(config: EmulatorConfig, announce: Callable[[str], None]) -> None:
    server = EmulatorServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with server.running():
        announce(f"Gemini Live emulator listening on {server.url} (mode {config.mode})")
        await stop.wait()
