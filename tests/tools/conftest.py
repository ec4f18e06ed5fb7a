"""Tool-test settings: known tool configuration, whatever the environment says.

The deny-all HTTP and DNS seams (`http_routes`, `resolver`) are autouse for every test, from
tests/conftest.py; their helpers live in tests/http_seam.py. MCP tests talk to a real MCP server
(tests/tools/mcp_server.py, the `mcp` SDK's own server) in a subprocess on a free port.
"""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.http_seam import FIXTURES, HttpRoutes, Resolver, load_fixture

__all__ = ["FIXTURES", "HttpRoutes", "Resolver", "load_fixture"]


@pytest.fixture(autouse=True)
def _tool_settings(settings):
    settings.PASTRA_TOOLS = ["get_weather", "web_search"]
    settings.PASTRA_CODE_EXECUTION = True
    settings.PASTRA_GOOGLE_SEARCH = False
    settings.PASTRA_URL_CONTEXT = False
    settings.PASTRA_TOOL_TIMEOUT_SECONDS = 8.0
    settings.PASTRA_HTTP_TIMEOUT_SECONDS = 6.0
    settings.PASTRA_WEATHER_GEOCODE_URL = "https://geocoding-api.open-meteo.com/v1/search"
    settings.PASTRA_WEATHER_FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
    settings.PASTRA_SEARCH_BACKEND = "wikipedia"
    settings.PASTRA_SEARCH_URL = ""
    settings.PASTRA_SEARCH_API_KEY = ""
    settings.PASTRA_STOCK_API_KEY = ""
    settings.PASTRA_STOCK_URL = "https://finnhub.io/api/v1/quote"
    settings.PASTRA_MCP_LIST_TIMEOUT_SECONDS = 5.0
    settings.PASTRA_MCP_CACHE_SECONDS = 60
    return settings


# --- a real MCP server (tests/tools/mcp_server.py) in a subprocess -------------------------


class McpProcess:
    """The test MCP server on 127.0.0.1:`port`; `url` is its Streamable HTTP endpoint."""

    def __init__(self, token: str = "") -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        argv = [sys.executable, str(Path(__file__).with_name("mcp_server.py")), str(self.port)]
        self.process = subprocess.Popen(
            [*argv, token] if token else argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the MCP test server exited: {self.process.stderr.read()!r}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the MCP test server did not start")

    def add_tool(self) -> None:
        """The server lists one more tool (`shout`) from now on."""
        with urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{self.port}/control/add-tool", b"", {}),
            timeout=5,
        ) as response:
            assert response.status == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process.stderr.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def mcp_server():
    """One MCP server for the tests that do not change it (bearer token `s3cret`)."""
    server = McpProcess(token="s3cret")
    yield server
    server.stop()


@pytest.fixture
def fresh_mcp_server():
    """An MCP server of this test's own (it may die, or change its tool list)."""
    server = McpProcess()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_mcp_cache():
    """Each test starts with no cached MCP listing or server table, and leaves none."""
    from assistant.tools import mcp_tools

    mcp_tools.clear_cache()
    yield
    mcp_tools.clear_cache()
