"""MCP tools and calculate in live sessions, end to end: the web UI's socket, the bridge, the
emulator over a real WebSocket, and a real MCP server process. The model (the emulator) calls
`demo__add` as declared, the server runs it and the reply says the result; a failing tool
gives the tool card one plain sentence and the model's reply says it; a server that is down
is left out and the UI is told; calculate shows the code and result cards."""

import socket

import pytest

from assistant.models import ConversationEvent, MCPServer
from assistant.tools import mcp_secret
from tests.live.conftest import (  # noqa: F401 (fixtures)
    MODEL,
    _close_thread_connections,
    alice_token,
    emulator,
    gemini_client,
    gemini_recv,
    gemini_until,
    live_settings,
    make_token,
    receive_until,
    said,
    start_emulator,
    turn_complete,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def servers(mcp_server, live_settings):  # noqa: F811
    live_settings.PASTRA_TOOLS = ["get_weather", "web_search", "calculate"]
    MCPServer.objects.create(
        name="demo",
        url=mcp_server.url,
        secret_sealed=mcp_secret.seal("s3cret"),
        allow_private=True,
    )
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    MCPServer.objects.create(name="down", url=f"http://127.0.0.1:{port}/mcp", allow_private=True)


async def start(comm):
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "start"})
    got = await receive_until(comm, lambda e: e["type"] == "session" and e["state"] == "ready")
    return got


async def tool_turn(comm, text: str):
    """gemini-3.8-live says "Calling NAME." and, once the result is in, a turn of its own."""
    got = await web_turn(comm, text)
    return await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)


async def test_an_mcp_tool_is_declared_called_and_answered(alice, emulator, servers):  # noqa: F811
    comm = web_client(alice)
    started = await start(comm)
    (notice,) = started.of("notice")
    assert notice["code"] == "tools_unavailable"
    assert notice["servers"] == ["down"]
    assert notice["message"] == (
        "Tools from down are not available right now: the conversation goes on without them."
    )

    got = await tool_turn(comm, 'call demo__add {"a": 2, "b": 40}')
    assert got.finals("model")[-1] == 'demo__add returned {"result":42}'
    _, finished = got.of("tool")
    assert (finished["name"], finished["ok"]) == ("demo__add", True)
    assert "message" not in finished

    got = await tool_turn(comm, 'call demo__fail {"message": "the printer is out of paper"}')
    _, finished = got.of("tool")
    assert finished["ok"] is False
    assert finished["message"] == "The printer is out of paper."
    assert got.finals("model")[-1] == "demo__fail failed: The printer is out of paper."
    await comm.disconnect()
    results = [
        (e.text, e.data["ok"])
        async for e in ConversationEvent.objects.filter(kind="tool_result").order_by("seq")
    ]
    assert results == [("demo__add", True), ("demo__fail", False)]


async def test_calculate_runs_on_the_server_and_shows_code_cards(alice, emulator, servers):  # noqa: F811
    comm = web_client(alice)
    await start(comm)
    got = await tool_turn(comm, 'call calculate {"expression": "5 km to miles"}')
    assert got.finals("model")[-1].startswith('calculate returned {"expression":"5 km to miles"')
    (code,) = got.of("code")
    (result,) = got.of("code.result")
    assert (code["language"], code["code"]) == ("calculate", "5 km to miles")
    assert (result["outcome"], result["output"]) == ("OUTCOME_OK", "3.10685596119 miles")
    await comm.disconnect()


async def test_a_gemini_client_gets_the_server_run_mcp_tool_too(alice_token, emulator, servers):  # noqa: F811
    comm = gemini_client(alice_token)
    connected, _ = await comm.connect()
    assert connected
    setup = {"model": f"models/{MODEL}", "outputAudioTranscription": {}}
    await comm.send_json_to({"setup": setup})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": 'call demo__add {"a": 1, "b": 2}'}})
    calling = await gemini_until(comm, turn_complete)
    result = await gemini_until(comm, turn_complete)
    assert all("toolCall" not in m for m in calling + result)  # the server's call, not the client's
    assert said(result) == 'demo__add returned {"result":3}'
    await comm.disconnect()
