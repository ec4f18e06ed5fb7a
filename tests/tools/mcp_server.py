"""A small real MCP server (the `mcp` SDK's MCPServer, formerly FastMCP) for the MCP tests.

Run as `python tests/tools/mcp_server.py PORT [TOKEN]`: Streamable HTTP on 127.0.0.1:PORT at
`/mcp`. With TOKEN, a request without `Authorization: Bearer TOKEN` is answered 401.
`POST /control/add-tool` adds a tool `shout` at run time (the tool list changes). Host headers
`127.0.0.1:PORT` and `mcp.test:PORT` pass the SDK's DNS-rebinding check.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

server = MCPServer("pastra-test")


@server.tool(description="Adds two whole numbers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Greets someone, politely or not.")
def greet(name: str, polite: bool = True) -> dict:
    return {"greeting": f"{'Good day' if polite else 'Hey'}, {name}!"}


@server.tool(description="Always fails with the message it is given.")
def fail(message: str) -> str:
    raise ToolError(message)


@server.tool(description="Waits a number of seconds, then answers.")
async def sleep(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "awake"


@server.tool(description="Ends the server process in the middle of the call.")
async def die() -> str:
    await asyncio.sleep(0.1)
    os._exit(3)


class Address(BaseModel):
    street: str
    city: str


@server.tool(description="Takes a nested object (its schema uses $ref).")
def mail(to: Address) -> str:
    return f"sent to {to.city}"


def shout(text: str) -> str:
    return text.upper()


@server.custom_route("/control/add-tool", methods=["POST"])
async def add_tool(request: Request) -> JSONResponse:
    server.add_tool(shout, description="Says the text in capitals.")
    return JSONResponse({"added": "shout"})


class BearerOnly:
    """ASGI middleware: every /mcp request needs the bearer token."""

    def __init__(self, app, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/mcp"):
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != f"Bearer {self.token}":
                await PlainTextResponse("unauthorized", status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def main() -> None:
    import uvicorn

    port = int(sys.argv[1])
    # The SDK's DNS-rebinding check, with the name the pinning test gives this server.
    hosts = [f"127.0.0.1:{port}", f"mcp.test:{port}"]
    security = TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=[])
    app = server.streamable_http_app(
        stateless_http=True, json_response=True, host="127.0.0.1", transport_security=security
    )
    if len(sys.argv) > 2:
        app = BearerOnly(app, sys.argv[2])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
