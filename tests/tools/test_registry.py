"""The registry: what is declared to Gemini, and a runner that never raises."""

import asyncio
import json
import logging
import time

import httpx
import pytest

from assistant.tools import registry
from assistant.tools.base import Behavior, Tool, ToolError, ToolResult
from tests.tools.conftest import load_fixture


@pytest.fixture
def fake_tool(monkeypatch, settings):
    """Install a test tool named `fake` whose handler is `handler` (set per test)."""

    def install(handler, parameters=None, name="fake"):
        tool = Tool(
            name=name,
            description="A test tool.",
            parameters=parameters
            or {
                "type": "OBJECT",
                "properties": {"text": {"type": "STRING"}, "count": {"type": "INTEGER"}},
                "required": ["text"],
            },
            handler=handler,
        )
        monkeypatch.setitem(registry.TOOLS, name, tool)
        settings.PASTRA_TOOLS = [*settings.PASTRA_TOOLS, name]
        return tool

    return install


def schema_types(schema):
    yield schema["type"]
    for child in schema.get("properties", {}).values():
        yield from schema_types(child)


# --- declarations ----------------------------------------------------------------------------


def test_default_setup_tools():
    tools = registry.gemini_tools()

    assert [list(entry) for entry in tools] == [["functionDeclarations"], ["codeExecution"]]
    assert tools[1] == {"codeExecution": {}}
    declarations = tools[0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather", "web_search"]
    for declaration in declarations:
        assert set(declaration) == {"name", "description", "parameters", "behavior"}
        assert declaration["behavior"] == "BLOCKING"
        assert declaration["parameters"]["type"] == "OBJECT"
        assert all(t.isupper() for t in schema_types(declaration["parameters"]))
        assert set(declaration["parameters"]["required"]) <= set(
            declaration["parameters"]["properties"]
        )
    json.dumps(tools)  # goes on the wire as is
    assert registry.server_function_names() == frozenset({"get_weather", "web_search"})


def test_weather_declaration_suits_the_emulator_weather_script():
    """The emulator's `weather in <Place>` fills the first required parameter."""
    (declaration,) = [d for d in registry.function_declarations() if "weather" in d["name"]]
    assert declaration["parameters"]["required"][0] == "location"


@pytest.mark.parametrize(
    ("code", "search", "expected"),
    [
        (True, False, ["functionDeclarations", "codeExecution"]),
        (False, False, ["functionDeclarations"]),
        (False, True, ["functionDeclarations", "googleSearch"]),
        (True, True, ["functionDeclarations", "codeExecution", "googleSearch"]),
    ],
)
def test_builtin_tools_are_switched_per_deployment(settings, code, search, expected):
    settings.PASTRA_CODE_EXECUTION = code
    settings.PASTRA_GOOGLE_SEARCH = search

    tools = registry.gemini_tools()

    assert [next(iter(entry)) for entry in tools] == expected
    assert all(
        entry[key] == {} for entry in tools for key in entry if key != "functionDeclarations"
    )


def test_url_context_is_offered_only_when_switched_on(settings):
    settings.PASTRA_CODE_EXECUTION = False
    settings.PASTRA_URL_CONTEXT = True
    assert [next(iter(entry)) for entry in registry.gemini_tools()] == [
        "functionDeclarations",
        "urlContext",
    ]
    settings.PASTRA_URL_CONTEXT = False
    assert [next(iter(entry)) for entry in registry.gemini_tools()] == ["functionDeclarations"]


def test_no_enabled_function_omits_the_declarations_entry(settings):
    settings.PASTRA_TOOLS = []

    assert registry.gemini_tools() == [{"codeExecution": {}}]
    assert registry.server_function_names() == frozenset()
    settings.PASTRA_CODE_EXECUTION = False
    assert registry.gemini_tools() == []


def test_deployment_chooses_the_tools(settings):
    settings.PASTRA_TOOLS = ["web_search", "no_such_tool"]

    assert registry.server_function_names() == frozenset({"web_search"})
    assert [d["name"] for d in registry.function_declarations()] == ["web_search"]


async def test_disabled_tool_is_unknown_to_the_runner(settings, http_routes):
    settings.PASTRA_TOOLS = ["web_search"]

    result = await registry.run(call_id="c7", name="get_weather", args={"location": "Paris"})

    assert result == ToolResult(
        call_id="c7",
        name="get_weather",
        response={"status": "error", "error": "unknown tool: get_weather", "retryable": False},
        ok=False,
        duration_ms=result.duration_ms,
    )
    assert http_routes.requests == []


# --- the runner never raises -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["turn_on_the_lights", "", None, 42])
async def test_unknown_tool_gets_an_error_result(name):
    result = await registry.run(call_id="c1", name=name, args={})

    assert not result.ok
    assert result.response["error"].startswith("unknown tool")
    assert result.call_id == "c1"


async def test_success_result(fake_tool):
    async def handler(*, text, count=1):
        return {"echo": text * count}

    fake_tool(handler)

    result = await registry.run(call_id="c1", name="fake", args={"text": "ab", "count": 2.0})

    assert result.ok
    assert result.response == {"echo": "abab"}
    assert result.name == "fake"
    assert result.duration_ms >= 0


async def test_tool_error_becomes_an_error_result(fake_tool):
    async def handler(**kwargs):
        raise ToolError("no place called Atlantis")

    fake_tool(handler)

    result = await registry.run(call_id="c1", name="fake", args={"text": "x"})

    assert result.response == {
        "status": "error",
        "error": "no place called Atlantis",
        "retryable": False,
    }
    assert not result.ok


async def test_crash_is_logged_and_reported_as_internal_error(fake_tool, caplog):
    async def handler(**kwargs):
        raise KeyError("boom")

    fake_tool(handler)

    with caplog.at_level(logging.INFO, logger="assistant.tools"):
        result = await registry.run(call_id="c1", name="fake", args={"text": "secret words"})

    assert result.response == {"status": "error", "error": "internal error", "retryable": False}
    assert not result.ok
    (crash,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert crash.exc_info is not None
    assert "fake" in crash.getMessage()
    assert all("secret words" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", [None, "text", ["a"], {"a": {1, 2}}])
async def test_handler_returning_a_non_json_dict_is_a_bug(fake_tool, bad):
    async def handler(**kwargs):
        return bad

    fake_tool(handler)

    result = await registry.run(call_id="c1", name="fake", args={"text": "x"})

    assert result.response == {"status": "error", "error": "internal error", "retryable": False}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required argument(s): location"),
        (None, "missing required argument(s): location"),
        ({"location": None}, "missing required argument(s): location"),
        ({"place": "Paris"}, "unknown argument(s) place; get_weather accepts location, units"),
        ({"location": 5}, "argument location must be a string"),
        ({"location": ["Paris"]}, "argument location must be a string"),
        (
            {"location": "Paris", "units": "kelvin"},
            "argument units must be one of: metric, imperial",
        ),
        ({"location": "Paris", "units": 3}, "argument units must be a string"),
        ("Paris", "arguments must be an object"),
        (["Paris"], "arguments must be an object"),
    ],
)
async def test_bad_arguments_become_error_results(http_routes, args, message):
    result = await registry.run(call_id="c1", name="get_weather", args=args)

    assert result.response == {"status": "error", "error": message, "retryable": False}
    assert http_routes.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"text": "x", "count": 1.5}, "argument count must be an integer"),
        ({"text": "x", "count": True}, "argument count must be an integer"),
        ({"text": "x", "count": "2"}, "argument count must be an integer"),
    ],
)
async def test_integer_arguments(fake_tool, args, message):
    async def handler(**kwargs):
        return kwargs

    fake_tool(handler)

    result = await registry.run(call_id="c1", name="fake", args=args)

    assert result.response == {"status": "error", "error": message, "retryable": False}


async def test_timeout_becomes_an_error_result(http_routes, settings):
    settings.PASTRA_TOOL_TIMEOUT_SECONDS = 0.2

    async def slow(request):
        await asyncio.sleep(5)
        return httpx.Response(200, json=load_fixture("open-meteo-geocoding-paris.json"))

    http_routes["GET", "geocoding-api.open-meteo.com", "/v1/search"] = slow
    started = time.monotonic()

    result = await registry.run(call_id="c1", name="get_weather", args={"location": "Paris"})

    assert time.monotonic() - started < 2
    assert not result.ok
    assert "time" in result.response["error"]
    assert result.response == {
        "status": "error",
        "error": "get_weather did not finish in time (limit 0.2 seconds)",
        "retryable": True,
    }
    assert 150 <= result.duration_ms < 2000


async def test_calls_run_concurrently(http_routes):
    async def slow(request):
        await asyncio.sleep(0.4)
        return httpx.Response(200, json=load_fixture("wikipedia-action-search.json"))

    http_routes["GET", "en.wikipedia.org", "/w/api.php"] = slow
    started = time.monotonic()

    first, second = await asyncio.gather(
        registry.run(call_id="a", name="web_search", args={"query": "rust"}),
        registry.run(call_id="b", name="web_search", args={"query": "tokio"}),
    )

    elapsed = time.monotonic() - started
    assert first.ok
    assert second.ok
    assert (first.call_id, second.call_id) == ("a", "b")
    assert elapsed < 0.75, f"two 0.4 s calls took {elapsed:.2f} s"


async def test_cancellation_propagates_and_the_handler_sees_it(fake_tool):
    started = asyncio.Event()
    seen = []

    async def handler(**kwargs):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return {}

    fake_tool(handler)
    task = asyncio.create_task(registry.run(call_id="c1", name="fake", args={"text": "x"}))
    await started.wait()

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_cancellation_during_an_http_request_propagates(http_routes):
    in_flight = asyncio.Event()

    async def slow(request):
        in_flight.set()
        await asyncio.sleep(30)
        return httpx.Response(200, json={})

    http_routes["GET", "en.wikipedia.org", "/w/api.php"] = slow
    task = asyncio.create_task(registry.run(call_id="c1", name="web_search", args={"query": "x"}))
    await in_flight.wait()

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_logs_name_outcome_and_duration_but_not_arguments_or_results(http_routes, caplog):
    http_routes.json(
        "GET", "https://en.wikipedia.org/w/api.php", load_fixture("wikipedia-action-search.json")
    )

    with caplog.at_level(logging.INFO, logger="assistant.tools"):
        await registry.run(call_id="c9", name="web_search", args={"query": "very private query"})

    (line,) = [r.getMessage() for r in caplog.records if r.name == "assistant.tools.registry"]
    assert line.startswith("tool web_search ok in ")
    assert "c9" in line
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "very private query" not in text
    assert "Rust" not in text


def test_summary_is_short():
    result = ToolResult(call_id="c", name="n", response={"text": "x" * 500}, ok=True, duration_ms=1)

    assert len(result.summary()) == 160
    assert result.summary().endswith("…")
    assert ToolResult("c", "n", {"a": 1}, True, 1).summary() == '{"a":1}'


def test_every_registered_tool_is_well_formed():
    for name, tool in registry.TOOLS.items():
        assert name == tool.name
        assert tool.behavior in (Behavior.BLOCKING, Behavior.NON_BLOCKING)
        assert asyncio.iscoroutinefunction(tool.handler)
        assert tool.description
