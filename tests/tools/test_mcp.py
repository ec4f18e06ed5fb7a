"""MCP tool servers against a real MCP server process: discovery, calls, errors, timeouts, a
server dying mid-call, tool-list changes, refused schemas, the SSRF guard, who gets which
server, and the bearer secret."""

import asyncio
import socket
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connections

from assistant.models import MCPServer
from assistant.tools import mcp_secret, mcp_tools, registry

pytestmark = pytest.mark.django_db(transaction=True)


async def in_thread(fn, *args, **kwargs):
    """`fn` in a worker thread whose database connection is given back when it is done: a
    pooled connection kept by a bare thread would starve the PostgreSQL pool for the tests
    after this one."""

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def server_row(url: str, *, name="demo", secret="", **fields) -> MCPServer:
    fields.setdefault("allow_private", True)
    return MCPServer.objects.create(
        name=name, url=url, secret_sealed=mcp_secret.seal(secret), **fields
    )


async def tools_of(user_id: int) -> mcp_tools.SessionTools:
    return await mcp_tools.for_user(user_id)


async def call(found: mcp_tools.SessionTools, name: str, args: dict):
    return await registry.run(call_id="c1", name=name, args=args, extra=found.tools)


@pytest.fixture
def demo(mcp_server, alice):
    return server_row(mcp_server.url, secret="s3cret")


async def test_discovery_declares_namespaced_tools_with_gemini_schemas(demo, alice):
    found = await tools_of(alice.id)
    assert found.unavailable == ()
    names = {"demo__add", "demo__greet", "demo__fail", "demo__sleep", "demo__die"}
    assert set(found.tools) == names
    declaration = found.tools["demo__add"].declaration()
    assert declaration["parameters"] == {
        "type": "OBJECT",
        "title": "addArguments",
        "properties": {
            "a": {"type": "INTEGER", "title": "A"},
            "b": {"type": "INTEGER", "title": "B"},
        },
        "required": ["a", "b"],
    }
    assert declaration["description"].startswith("Adds two whole numbers.")
    # A tool without arguments is declared without `parameters` (Gemini refuses empty ones).
    assert "parameters" not in found.tools["demo__die"].declaration()
    entries = registry.gemini_tools(found.tools.values())
    names = [d["name"] for d in entries[0]["functionDeclarations"]]
    assert names[:2] == ["get_weather", "web_search"]
    assert "demo__greet" in names


async def test_a_schema_the_live_api_would_refuse_is_left_out_and_staff_are_told(demo, alice):
    found = await tools_of(alice.id)
    assert "demo__mail" not in found.tools
    entries = registry.gemini_tools(found.tools.values())
    assert "demo__mail" not in str(entries)  # never sent upstream
    await asyncio.sleep(0)
    demo = await MCPServer.objects.aget(pk=demo.pk)
    refused = [row for row in demo.listed_tools if row.get("refused")]
    assert refused == [
        {
            "tool": "mail",
            "name": "demo__mail",
            "enabled": True,
            "refused": "the input schema uses shared definitions ($defs), "
            "which the Live API does not accept",
        }
    ]
    assert "5 of 6 tools declared. Left out mail: the input schema uses shared" in demo.status


async def test_a_call_with_arguments_runs_on_the_server(demo, alice):
    found = await tools_of(alice.id)
    added = await call(found, "demo__add", {"a": 2, "b": 40})
    assert (added.ok, added.response) == (True, {"result": 42})
    greeted = await call(found, "demo__greet", {"name": "Ann", "polite": False})
    assert greeted.response == {"greeting": "Hey, Ann!"}
    wrong = await call(found, "demo__add", {"a": "two", "b": 1})  # checked before it goes out
    assert wrong.response == {
        "status": "error",
        "error": "argument a must be an integer",
        "retryable": False,
    }


async def test_a_tool_error_is_the_tools_own_sentence(demo, alice):
    found = await tools_of(alice.id)
    result = await call(found, "demo__fail", {"message": "the printer is out of paper"})
    assert not result.ok
    assert result.response == {
        "status": "error",
        "error": "the printer is out of paper",
        "retryable": False,
    }
    assert result.message() == "The printer is out of paper."


async def test_a_call_past_the_servers_timeout_is_an_error_the_model_can_say(mcp_server, alice):
    await in_thread(server_row, mcp_server.url, secret="s3cret", timeout_seconds=0.5)
    found = await tools_of(alice.id)
    result = await call(found, "demo__sleep", {"seconds": 3})
    assert not result.ok
    assert result.response["retryable"] is True
    assert result.response["error"] in (
        "demo__sleep did not finish in time (limit 0.5 seconds)",
        "The demo tool server did not answer in time",
    )


async def test_a_server_that_dies_mid_call_gives_an_error_then_is_left_out(fresh_mcp_server, alice):
    await in_thread(server_row, fresh_mcp_server.url)
    found = await tools_of(alice.id)
    result = await call(found, "demo__die", {})
    assert not result.ok
    assert result.response["retryable"] is True
    assert result.message() == "The demo tool server stopped answering in mid-call."
    fresh_mcp_server.process.wait(5)
    mcp_tools.clear_cache()
    again = await tools_of(alice.id)
    assert (again.tools, again.unavailable) == ({}, ("demo",))
    demo = await MCPServer.objects.aget(name="demo")
    assert demo.status == "The demo tool server could not be reached."


async def test_tool_list_changes_are_seen_once_the_cached_listing_expires(
    fresh_mcp_server, alice, monkeypatch
):
    await in_thread(server_row, fresh_mcp_server.url)
    assert "demo__shout" not in (await tools_of(alice.id)).tools
    await in_thread(fresh_mcp_server.add_tool)
    # Within the TTL the cached listing is used: no round trip at a session start.
    assert "demo__shout" not in (await tools_of(alice.id)).tools
    later = mcp_tools.time.monotonic() + 61
    monkeypatch.setattr(mcp_tools.time, "monotonic", lambda: later)
    found = await tools_of(alice.id)
    assert "demo__shout" in found.tools
    shouted = await call(found, "demo__shout", {"text": "hello"})
    assert shouted.response == {"result": "HELLO"}


async def test_a_loopback_url_is_refused_without_allow_private(mcp_server, alice):
    await in_thread(server_row, mcp_server.url, secret="s3cret", allow_private=False)
    found = await tools_of(alice.id)
    assert (found.tools, found.unavailable) == ({}, ("demo",))
    demo = await MCPServer.objects.aget(name="demo")
    assert demo.status == (
        "The demo tool server has an address that is not allowed: "
        "that address is private or local and not allowed."
    )


async def test_the_secret_is_never_shown(demo, alice):
    found = await tools_of(alice.id)
    assert "s3cret" not in repr(found)
    assert "s3cret" not in repr(await in_thread(mcp_tools.config_of, demo))


async def test_a_wrong_secret_is_refused_credentials(mcp_server, alice):
    await in_thread(server_row, mcp_server.url, secret="not it")
    found = await tools_of(alice.id)
    assert found.unavailable == ("demo",)
    demo = await MCPServer.objects.aget(name="demo")
    assert demo.status == "The demo tool server refused Pastra's credentials."


async def test_a_server_is_only_for_its_users_and_groups(mcp_server, alice, bob, make_user):
    carol = await in_thread(make_user, "carol")

    def setup():
        staff = Group.objects.create(name="staff")
        carol.groups.add(staff)
        mine = server_row(mcp_server.url, name="mine", secret="s3cret")
        mine.users.add(alice)
        team = server_row(mcp_server.url, name="team", secret="s3cret", tools="add")
        team.groups.add(staff)
        server_row(mcp_server.url, name="off", secret="s3cret", enabled=False)

    await in_thread(setup)
    assert {n.split("__")[0] for n in (await tools_of(alice.id)).tools} == {"mine"}
    assert set((await tools_of(carol.id)).tools) == {"team__add"}  # only its enabled tool
    assert (await tools_of(bob.id)).tools == {}


@pytest.mark.timeout(30)  # its own call timeout is 60 s: the start must not wait for it
async def test_a_slow_server_never_holds_up_the_session_start(mcp_server, alice, settings):
    """A server that accepts the connection and never answers: left out, the others kept."""
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        settings.PASTRA_MCP_LIST_TIMEOUT_SECONDS = 0.5
        port = silent.getsockname()[1]
        url = f"http://127.0.0.1:{port}/mcp"
        await in_thread(server_row, url, name="slow", timeout_seconds=60)
        demo = await in_thread(server_row, mcp_server.url, secret="s3cret")
        # demo's listing is cached first: on a loaded machine its own first listing may take
        # longer than the 0.5 s this test allows.
        await mcp_tools.listing(await in_thread(mcp_tools.config_of, demo), wait=10)
        found = await tools_of(alice.id)
        assert found.unavailable == ("slow",)
        assert "demo__add" in found.tools
        slow = await MCPServer.objects.aget(name="slow")
        assert slow.status == "The slow tool server did not list its tools within 0.5 s."
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        silent.close()


async def test_the_connection_goes_to_the_address_the_guard_checked(mcp_server, alice, resolver):
    """The name is resolved once, by the SSRF guard, and every request goes to that address
    (DNS rebinding cannot move it): mcp.test exists only in the test's resolver."""
    resolver["mcp.test"] = ["127.0.0.1"]
    url = mcp_server.url.replace("127.0.0.1", "mcp.test")
    await in_thread(server_row, url, secret="s3cret")
    found = await tools_of(alice.id)
    assert found.unavailable == ()
    result = await call(found, "demo__add", {"a": 1, "b": 1})
    assert result.response == {"result": 2}
    assert resolver.lookups == ["mcp.test", "mcp.test"]  # the listing's check, the call's


async def test_a_running_call_is_cancelled_at_once(demo, alice):
    """Barge-in cancels the task: the MCP call stops with it, nothing is answered."""
    found = await tools_of(alice.id)
    task = asyncio.ensure_future(call(found, "demo__sleep", {"seconds": 30}))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
