"""Issue 5 end to end through the bridge: server tools over real sockets.

Web (`/ws/live/`) and Gemini-compatible clients talk to the consumers; the bridge talks to the
emulator (or, where the emulator cannot script something, to `FakeGemini` below) over a real
WebSocket; tools reach "Open-Meteo" and "Wikipedia" only through the deny-all HTTP seam
(`http_routes`), answered from recorded responses. What went upstream is observed with a spy
on `Upstream.send` (after a successful send), so "exactly one functionResponse per call id"
is checked on the wire; the emulator itself closes 1007 on a duplicate or unknown id, which
the follow-up turns would notice.
"""

import asyncio
import json

import httpx
import orjson
import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.server import serve

from assistant.live.upstream import Upstream
from assistant.models import Conversation, ConversationEvent
from tests.http_seam import load_fixture
from tests.live.conftest import (
    MODEL,
    frames,
    gemini_client,
    gemini_recv,
    gemini_until,
    receive_until,
    said,
    silence,
    start_web,
    tone,
    turn_complete,
    wait_for,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)
Kind = ConversationEvent.Kind

GEOCODE = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST = "https://api.open-meteo.com/v1/forecast"
WIKIPEDIA = "https://en.wikipedia.org/w/api.php"
GEOCODE_KEY = ("GET", "geocoding-api.open-meteo.com", "/v1/search")
WIKIPEDIA_KEY = ("GET", "en.wikipedia.org", "/w/api.php")


@pytest.fixture(autouse=True)
def tool_settings(live_settings):
    """Known tool configuration, whatever the environment says."""
    live_settings.PASTRA_TOOLS = ["get_weather", "web_search"]
    live_settings.PASTRA_TOOL_TIMEOUT_SECONDS = 8.0
    live_settings.PASTRA_WEATHER_GEOCODE_URL = GEOCODE
    live_settings.PASTRA_WEATHER_FORECAST_URL = FORECAST
    live_settings.PASTRA_SEARCH_BACKEND = "wikipedia"
    live_settings.PASTRA_SEARCH_URL = ""
    return live_settings


@pytest.fixture
async def fast_emulator(start_emulator):
    return await start_emulator(pace=0)  # reply audio as fast as possible


@pytest.fixture
def open_meteo(http_routes):
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-paris.json"))
    http_routes.json("GET", FORECAST, load_fixture("open-meteo-forecast.json"))
    return http_routes


@pytest.fixture
def upstream_sent(monkeypatch):
    """Every message the bridge sent upstream (parsed), in order."""
    sent: list[dict] = []
    original, original_now = Upstream.send, Upstream.send_now

    async def send(self, payload):  # the writer task's
        await original(self, payload)
        sent.append(orjson.loads(payload))

    def send_now(self, payload):  # the caller's, while the writer waits (link.py)
        if done := original_now(self, payload):
            sent.append(orjson.loads(payload))
        return done

    monkeypatch.setattr(Upstream, "send", send)
    monkeypatch.setattr(Upstream, "send_now", send_now)
    return sent


def declared_behaviors(setup: dict) -> dict[str, str]:
    return {
        d["name"]: d["behavior"] for t in setup["tools"] for d in t.get("functionDeclarations", ())
    }


def response_ids(sent: list[dict]) -> list[str]:
    """The ids of every functionResponse sent upstream, one entry per response."""
    return [
        r["id"]
        for msg in sent
        if "toolResponse" in msg
        for r in msg["toolResponse"]["functionResponses"]
    ]


def hanging(flag: asyncio.Event):
    """An HTTP handler that never answers; sets `flag` when its request is cancelled."""

    async def handler(request):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            flag.set()
            raise
        raise AssertionError("not cancelled")

    return handler


async def events_of(conversation_id) -> list[ConversationEvent]:
    @database_sync_to_async
    def read():
        return list(
            ConversationEvent.objects.filter(conversation_id=conversation_id).order_by("seq")
        )

    return await read()


async def tool_records(conversation_id) -> tuple[list[dict], list[ConversationEvent]]:
    events = await events_of(conversation_id)
    calls = [e.data for e in events if e.kind == Kind.TOOL_CALL]
    return calls, [e for e in events if e.kind == Kind.TOOL_RESULT]


async def gemini_session(token, setup=None):
    comm = gemini_client(token)
    connected, _ = await comm.connect()
    assert connected
    body = {"model": f"models/{MODEL}", "outputAudioTranscription": {}, **(setup or {})}
    await comm.send_json_to({"setup": body})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    return comm


# Server functions are BLOCKING on this 2.5 model (the capability table), NON_BLOCKING with
# WHEN_IDLE results on MODEL (gemini-3.8-live): batch and barge-in mechanics are tested here.
BLOCKING_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


@pytest.fixture
def blocking_model(live_settings):
    live_settings.PASTRA_ALLOWED_MODELS = [*live_settings.PASTRA_ALLOWED_MODELS, BLOCKING_MODEL]
    return BLOCKING_MODEL


async def web_tool_turn(comm, text: str):
    """A turn on MODEL that calls a server function: gemini-3.8-live goes on talking
    ("Calling NAME.") while it runs, then says the result in a turn of its own (WHEN_IDLE)."""
    got = await web_turn(comm, text)
    return await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)


async def gemini_tool_turn(comm) -> tuple[list[dict], list[dict]]:
    """The same on the Gemini path: (the calling turn's messages, the result turn's)."""
    calling = await gemini_until(comm, turn_complete)
    return calling, await gemini_until(comm, turn_complete)


def failed(message: str, *, retryable: bool = False) -> dict:
    return {"status": "error", "error": message, "retryable": retryable}


def said_failed(error: str, name: str = "get_weather") -> str:
    """What the emulator says for an error response: a sentence, never the raw JSON."""
    if error.split()[0].isalpha():  # a word, not a name such as get_weather
        error = error[0].upper() + error[1:]
    return f"{name} failed: {error}"


def returned(reply: str, name: str = "get_weather") -> dict:
    prefix = f"{name} returned "
    assert reply.startswith(prefix), reply
    return json.loads(reply[len(prefix) :])


# --- the happy path, both client paths ---------------------------------------------------


async def test_weather_on_the_web_path(alice, fast_emulator, open_meteo, upstream_sent):
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_tool_turn(comm, "weather in Paris")
    # The server ran it: the page gets activity events, never a `tool.call` to answer.
    assert not got.of("tool.call")
    started, finished = got.of("tool")
    assert started == {
        "type": "tool",
        "phase": "started",
        "id": started["id"],
        "name": "get_weather",
        "executor": "server",
        "args": {"location": "Paris"},
    }
    assert (finished["phase"], finished["id"], finished["ok"]) == ("finished", started["id"], True)
    assert finished["summary"].startswith('{"location":"Paris, Île-de-France, France"')
    assert finished["duration_ms"] >= 0
    # The model's reply is built from Open-Meteo's data, via the bridge's toolResponse; it
    # said it was looking while the call ran (NON_BLOCKING).
    calling, reply = got.finals("model")
    assert calling == "Calling get_weather."
    weather = returned(reply)
    assert weather["location"] == "Paris, Île-de-France, France"
    assert weather["current"]["temperature"] == 17.7  # open-meteo-forecast.json
    assert weather["current"]["conditions"] == "partly cloudy"
    assert weather["source"] == "Open-Meteo.com"
    geocode = open_meteo.sent("geocoding-api.open-meteo.com")
    assert [r.url.params["name"] for r in geocode] == ["Paris"]
    assert open_meteo.sent("api.open-meteo.com")[0].url.params["latitude"] == "48.85341"
    # Exactly one functionResponse for the call, and the session is still healthy (the
    # emulator closes 1007 on a duplicate).
    assert response_ids(upstream_sent) == [started["id"]]
    assert fast_emulator.stats()["total"]["tool_calls"] == 1
    assert (await web_turn(comm, "thanks")).finals("model") == ["You said: thanks"]
    assert response_ids(upstream_sent) == [started["id"]]
    await comm.disconnect()
    # Recorded: tool_call (args, executor) then tool_result (response, ok, duration).
    calls, results = await tool_records(ready["conversation"])
    assert calls == [
        {
            "id": started["id"],
            "name": "get_weather",
            "args": {"location": "Paris"},
            "executor": "server",
        }
    ]
    (result,) = results
    assert result.data == {
        "id": started["id"],
        "name": "get_weather",
        "response": weather,
        "ok": True,
    }
    assert result.duration_ms is not None
    assert result.duration_ms >= 0
    assert (await Conversation.objects.aget(pk=ready["conversation"])).has_tool_calls


async def test_weather_on_the_gemini_path(alice_token, fast_emulator, open_meteo, upstream_sent):
    comm = await gemini_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "What is the weather in Paris?"}})
    calling, got = await gemini_tool_turn(comm)
    assert said(calling) == "Calling get_weather."
    got = calling + got
    assert all("toolCall" not in m and "toolCallCancellation" not in m for m in got)
    weather = returned(said(got[len(calling) :]))
    assert weather["current"]["temperature"] == 17.7
    (call_id,) = response_ids(upstream_sent)
    await comm.send_json_to({"realtimeInput": {"text": "thanks"}})
    assert said(await gemini_until(comm, turn_complete)) == "You said: thanks"
    await comm.disconnect()
    conversation = await Conversation.objects.aget(user__username="alice")
    calls, results = await tool_records(conversation.pk)
    assert calls == [
        {"id": call_id, "name": "get_weather", "args": {"location": "Paris"}, "executor": "server"}
    ]
    assert [(r.data["id"], r.data["ok"], r.data["response"]) for r in results] == [
        (call_id, True, weather)
    ]
    assert results[0].duration_ms is not None


# --- failures the model can say ------------------------------------------------------------


async def test_timeout_becomes_an_error_the_model_says(
    alice, fast_emulator, http_routes, tool_settings, upstream_sent
):
    tool_settings.PASTRA_TOOL_TIMEOUT_SECONDS = 0.3
    abandoned = asyncio.Event()
    http_routes[GEOCODE_KEY] = hanging(abandoned)
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_tool_turn(comm, "weather in Paris")
    error = "get_weather did not finish in time (limit 0.3 seconds)"
    assert got.finals("model")[-1] == said_failed(error) + "."
    started, finished = got.of("tool")
    assert (finished["phase"], finished["ok"]) == ("finished", False)
    assert error in finished["summary"]
    assert finished["message"] == f"{error}."  # the tool card's plain sentence
    assert 300 <= finished["duration_ms"] < 3000
    assert abandoned.is_set()  # the slow request was not left running
    assert response_ids(upstream_sent) == [started["id"]]
    await comm.disconnect()
    _, (result,) = await tool_records(ready["conversation"])
    assert (result.data["ok"], result.data["response"]) == (False, failed(error, retryable=True))
    assert result.duration_ms >= 300


@pytest.mark.parametrize(
    ("place", "geocode", "forecast", "error"),
    [
        (
            "Paris",
            (200, load_fixture("open-meteo-geocoding-paris.json")),
            (500, "Internal Server Error"),
            "the weather service is unavailable (HTTP 500)",
        ),
        (
            "Paris",
            (200, load_fixture("open-meteo-geocoding-paris.json")),
            (500, load_fixture("open-meteo-error.json")),
            "the weather service refused the request: Cannot initialize",
        ),
        (
            "Atlantis",
            (200, load_fixture("open-meteo-geocoding-notfound.json")),
            None,
            "place not found: Atlantis. Try a nearby town or add the country.",
        ),
    ],
    ids=["http-500", "http-500-with-reason", "unknown-place"],
)
async def test_provider_errors_become_errors_the_model_says(
    alice, fast_emulator, http_routes, place, geocode, forecast, error
):
    for url, answer in ((GEOCODE, geocode), (FORECAST, forecast)):
        if answer is not None:
            status, body = answer
            if isinstance(body, str):
                host_path = httpx.URL(url)
                http_routes["GET", host_path.host, host_path.path] = (
                    lambda request, status=status, body=body: httpx.Response(status, text=body)
                )
            else:
                http_routes.json("GET", url, body, status=status)
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_tool_turn(comm, f"weather in {place}")
    assert got.finals("model")[-1].startswith(said_failed(error))
    assert [(t["phase"], t.get("ok")) for t in got.of("tool")] == [
        ("started", None),
        ("finished", False),
    ]
    assert got.of("tool")[-1]["message"].startswith(said_failed(error).split(": ", 1)[1])
    await comm.disconnect()
    _, (result,) = await tool_records(ready["conversation"])
    answer = result.data["response"]
    assert set(answer) == {"status", "error", "retryable"}
    assert answer["error"].startswith(error)
    # An outage may pass; a place that does not exist will not (the model should not retry).
    assert answer["retryable"] is (place != "Atlantis")
    assert result.data["ok"] is False


async def test_unknown_place_on_the_gemini_path(alice_token, fast_emulator, http_routes):
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-notfound.json"))
    comm = await gemini_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "weather in Atlantis"}})
    calling, got = await gemini_tool_turn(comm)
    assert all("toolCall" not in m for m in calling + got)
    assert said(got) == said_failed(
        "place not found: Atlantis. Try a nearby town or add the country."
    )
    await comm.disconnect()


# --- cancellation ----------------------------------------------------------------------------


async def test_text_barge_in_cancels_a_running_tool(
    blocking_model, alice, fast_emulator, http_routes, upstream_sent
):
    abandoned = asyncio.Event()
    http_routes[GEOCODE_KEY] = hanging(abandoned)
    comm = web_client(alice)
    ready = await start_web(comm, model=blocking_model)
    await comm.send_json_to({"type": "text", "text": "weather in Paris"})
    got = await receive_until(comm, lambda e: e["type"] == "tool")
    call_id = got.events[-1]["id"]
    await comm.send_json_to({"type": "text", "text": "never mind"})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.events[-1]["interrupted"] is True
    assert got.of("interrupted")
    (cancelled,) = [t for t in got.of("tool") if t["phase"] != "started"]
    assert cancelled["phase"] == "cancelled"
    assert (cancelled["id"], cancelled["name"], cancelled["executor"]) == (
        call_id,
        "get_weather",
        "server",
    )
    assert cancelled["duration_ms"] >= 0
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.finals("model")[-1] == "You said: never mind"
    await wait_for(abandoned.is_set)  # the tool's task (and its HTTP request) was cancelled
    await asyncio.sleep(0.1)
    assert response_ids(upstream_sent) == []  # no toolResponse for a cancelled call
    assert [t["phase"] for t in got.of("tool")] == ["started", "cancelled"]
    await comm.disconnect()
    _, (result,) = await tool_records(ready["conversation"])
    assert result.data == {
        "id": call_id,
        "name": "get_weather",
        "response": {"error": "cancelled"},
        "ok": False,
    }


async def test_speech_barge_in_cancels_a_running_tool(
    blocking_model, alice, fast_emulator, http_routes, upstream_sent
):
    abandoned = asyncio.Event()
    http_routes[GEOCODE_KEY] = hanging(abandoned)
    comm = web_client(alice)
    ready = await start_web(comm, model=blocking_model)
    await comm.send_json_to({"type": "text", "text": "weather in Paris"})
    got = await receive_until(comm, lambda e: e["type"] == "tool")
    for frame in frames(tone(400) + silence(700)):
        await comm.send_to(bytes_data=frame)
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.events[-1]["interrupted"] is True
    assert [t["phase"] for t in got.of("tool")] == ["started", "cancelled"]
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.finals("model")[-1] == "I heard 0.4 seconds of audio."
    assert abandoned.is_set()
    assert response_ids(upstream_sent) == []
    await comm.disconnect()
    _, results = await tool_records(ready["conversation"])
    assert [(r.data["ok"], r.data["response"]) for r in results] == [
        (False, {"error": "cancelled"})
    ]


async def test_gemini_client_never_sees_the_server_cancellation(
    blocking_model, alice_token, fast_emulator, http_routes, upstream_sent
):
    abandoned = asyncio.Event()
    http_routes[GEOCODE_KEY] = hanging(abandoned)
    comm = await gemini_session(alice_token, {"model": f"models/{blocking_model}"})
    await comm.send_json_to({"realtimeInput": {"text": "weather in Paris"}})
    await wait_for(lambda: http_routes.requests)  # the tool is running
    await comm.send_json_to({"realtimeInput": {"text": "never mind"}})
    got = await gemini_until(comm, turn_complete)
    assert any(m.get("serverContent", {}).get("interrupted") for m in got)
    assert all("toolCall" not in m and "toolCallCancellation" not in m for m in got)
    assert said(await gemini_until(comm, turn_complete)) == "You said: never mind"
    assert abandoned.is_set()
    assert response_ids(upstream_sent) == []
    await comm.disconnect()
    conversation = await Conversation.objects.aget(user__username="alice")
    _, results = await tool_records(conversation.pk)
    assert [(r.data["ok"], r.data["response"]) for r in results] == [
        (False, {"error": "cancelled"})
    ]


async def test_a_tool_running_when_the_session_ends_is_recorded_cancelled(
    alice, fast_emulator, http_routes
):
    abandoned = asyncio.Event()
    http_routes[GEOCODE_KEY] = hanging(abandoned)
    comm = web_client(alice)
    ready = await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "weather in Paris"})
    await receive_until(comm, lambda e: e["type"] == "tool")
    await comm.disconnect()
    assert abandoned.is_set()
    calls, results = await tool_records(ready["conversation"])
    assert [c["name"] for c in calls] == ["get_weather"]
    assert [(r.data["id"], r.data["ok"], r.data["response"]) for r in results] == [
        (calls[0]["id"], False, {"error": "cancelled", "reason": "session ended"})
    ]


# --- exactly once, NON_BLOCKING ----------------------------------------------------------------


async def test_non_blocking_server_tool_is_answered_exactly_once(
    alice, fast_emulator, open_meteo, upstream_sent, upstream_setups
):
    """gemini-3.8-live: Pastra declares its functions NON_BLOCKING, so the turn goes on
    ("Calling get_weather.") while the call runs, and answers with `scheduling: WHEN_IDLE`, so
    the result is said in a turn of its own once the model is idle, never over its words."""
    comm = web_client(alice)
    await start_web(comm)
    got = await web_turn(comm, "weather in Paris")
    assert got.finals("model") == ["Calling get_weather."]
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert returned(got.finals("model")[-1])["location"] == "Paris, Île-de-France, France"
    (started,) = [t for t in got.of("tool") if t["phase"] == "started"]
    assert (await web_turn(comm, "thanks")).finals("model") == ["You said: thanks"]
    assert response_ids(upstream_sent) == [started["id"]]
    assert declared_behaviors(upstream_setups[0]) == {
        "get_weather": "NON_BLOCKING",
        "web_search": "NON_BLOCKING",
    }
    (response,) = [
        r
        for m in upstream_sent
        if "toolResponse" in m
        for r in m["toolResponse"]["functionResponses"]
    ]
    assert response["scheduling"] == "WHEN_IDLE"
    await comm.disconnect()


async def test_new_input_does_not_cancel_a_non_blocking_call(alice, fast_emulator, open_meteo):
    """gemini-3.8-live cancels only BLOCKING calls on new input: the person can talk on while
    the lookup runs, and its answer is said when it comes."""
    gate = asyncio.Event()

    async def slow_geocode(request):
        await gate.wait()
        return httpx.Response(200, json=load_fixture("open-meteo-geocoding-paris.json"))

    open_meteo[GEOCODE_KEY] = slow_geocode
    comm = web_client(alice)
    await start_web(comm)
    assert (await web_turn(comm, "weather in Paris")).finals("model") == ["Calling get_weather."]
    assert (await web_turn(comm, "never mind")).finals("model") == ["You said: never mind"]
    gate.set()
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete")
    assert returned(got.finals("model")[-1])["location"] == "Paris, Île-de-France, France"
    assert [t["phase"] for t in got.of("tool")] == ["finished"]
    await comm.disconnect()


async def test_blocking_model_gets_blocking_declarations_and_no_scheduling(
    blocking_model, alice, fast_emulator, open_meteo, upstream_sent, upstream_setups
):
    comm = web_client(alice)
    await start_web(comm, model=blocking_model)
    got = await web_turn(comm, "weather in Paris")
    (reply,) = got.finals("model")  # one turn: the model waited for the result
    assert returned(reply)["location"] == "Paris, Île-de-France, France"
    assert declared_behaviors(upstream_setups[0]) == {
        "get_weather": "BLOCKING",
        "web_search": "BLOCKING",
    }
    (response,) = [
        r
        for m in upstream_sent
        if "toolResponse" in m
        for r in m["toolResponse"]["functionResponses"]
    ]
    assert "scheduling" not in response
    await comm.disconnect()


# --- what the emulator cannot script: several calls in one toolCall ----------------------------


class FakeGemini:
    """A minimal scripted upstream (real WebSocket) for what the emulator cannot produce:
    several function calls in one toolCall. The test drives it: `send()` server messages,
    `next(key)` waits for a client message with that top-level key."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.ws = None
        self._server = None

    async def start(self, settings) -> "FakeGemini":
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        settings.PASTRA_UPSTREAM_URL = f"ws://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handler(self, ws) -> None:
        self.received.append(orjson.loads(await ws.recv()))  # setup
        await ws.send(b'{"setupComplete":{}}')
        self.ws = ws
        async for raw in ws:
            message = orjson.loads(raw)
            self.received.append(message)
            self.inbox.put_nowait(message)

    async def send(self, message: dict) -> None:
        await self.ws.send(orjson.dumps(message))

    async def next(self, key: str, seconds: float = 5.0) -> dict:
        async with asyncio.timeout(seconds):
            while key not in (message := await self.inbox.get()):
                pass
        return message[key]


@pytest.fixture
async def fake_gemini(live_settings):
    fake = await FakeGemini().start(live_settings)
    yield fake
    await fake.stop()


def two_calls() -> list[dict]:
    return [
        {"id": "call-w", "name": "get_weather", "args": {"location": "Paris"}},
        {"id": "call-s", "name": "web_search", "args": {"query": "rust programming"}},
    ]


async def test_calls_of_one_tool_call_run_concurrently(
    blocking_model, alice, fake_gemini, http_routes
):
    """Each handler waits until both requests are in flight: run one after the other, the
    first would time out and the calls fail."""
    inside: set[str] = set()
    both = asyncio.Event()

    def meeting(name, payload):
        async def handler(request):
            inside.add(name)
            if len(inside) == 2:
                both.set()
            async with asyncio.timeout(2.0):
                await both.wait()
            return httpx.Response(200, json=payload)

        return handler

    http_routes[GEOCODE_KEY] = meeting("weather", load_fixture("open-meteo-geocoding-paris.json"))
    http_routes.json("GET", FORECAST, load_fixture("open-meteo-forecast.json"))
    http_routes[WIKIPEDIA_KEY] = meeting("search", load_fixture("wikipedia-action-search.json"))
    comm = web_client(alice)
    ready = await start_web(comm, model=blocking_model)
    await comm.send_json_to({"type": "text", "text": "weather and a search, please"})
    await fake_gemini.next("realtimeInput")
    await fake_gemini.send({"toolCall": {"functionCalls": two_calls()}})
    # One toolResponse answers the whole server half of the toolCall.
    answer = await fake_gemini.next("toolResponse")
    responses = {r["id"]: r for r in answer["functionResponses"]}
    assert set(responses) == {"call-w", "call-s"}
    assert responses["call-w"]["name"] == "get_weather"
    assert responses["call-w"]["response"]["current"]["temperature"] == 17.7
    assert responses["call-s"]["response"]["results"][0]["title"] == "Rust (programming language)"
    await fake_gemini.send({"serverContent": {"outputTranscription": {"text": "Done."}}})
    await fake_gemini.send({"serverContent": {"turnComplete": True}})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete")
    phases = [(t["phase"], t["id"]) for t in got.of("tool")]
    assert phases[:2] == [("started", "call-w"), ("started", "call-s")]
    assert sorted(phases[2:]) == [("finished", "call-s"), ("finished", "call-w")]
    assert all(t["ok"] for t in got.of("tool") if t["phase"] == "finished")
    assert not got.of("tool.call")
    await comm.disconnect()
    assert sorted(response_ids(fake_gemini.received)) == ["call-s", "call-w"]
    calls, results = await tool_records(ready["conversation"])
    assert [c["id"] for c in calls] == ["call-w", "call-s"]
    assert sorted((r.data["id"], r.data["ok"]) for r in results) == [
        ("call-s", True),
        ("call-w", True),
    ]


async def test_non_blocking_results_go_up_each_as_soon_as_ready(alice, fake_gemini, open_meteo):
    """On gemini-3.8-live a slow call does not hold back a quick one of the same toolCall:
    each result goes up on its own, with WHEN_IDLE."""
    gate = asyncio.Event()

    async def slow_search(request):
        await gate.wait()
        return httpx.Response(200, json=load_fixture("wikipedia-action-search.json"))

    open_meteo[WIKIPEDIA_KEY] = slow_search
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "weather and a search, please"})
    await fake_gemini.next("realtimeInput")
    await fake_gemini.send({"toolCall": {"functionCalls": two_calls()}})
    first = await fake_gemini.next("toolResponse")
    assert [(r["id"], r["scheduling"]) for r in first["functionResponses"]] == [
        ("call-w", "WHEN_IDLE")
    ]
    gate.set()
    second = await fake_gemini.next("toolResponse")
    assert [(r["id"], r["scheduling"]) for r in second["functionResponses"]] == [
        ("call-s", "WHEN_IDLE")
    ]
    await comm.disconnect()
    assert response_ids(fake_gemini.received) == ["call-w", "call-s"]


async def test_cancelling_one_call_answers_the_rest_of_its_tool_call(
    blocking_model, alice, fake_gemini, open_meteo
):
    abandoned = asyncio.Event()
    open_meteo[WIKIPEDIA_KEY] = hanging(abandoned)
    comm = web_client(alice)
    ready = await start_web(comm, model=blocking_model)
    await comm.send_json_to({"type": "text", "text": "weather and a search, please"})
    await fake_gemini.next("realtimeInput")
    await fake_gemini.send({"toolCall": {"functionCalls": two_calls()}})
    got = await receive_until(comm, lambda e: e["type"] == "tool" and e["phase"] == "finished")
    assert got.events[-1]["id"] == "call-w"
    await fake_gemini.send({"toolCallCancellation": {"ids": ["call-s"]}})
    got = await receive_until(comm, lambda e: e.get("phase") == "cancelled", into=got)
    assert (got.events[-1]["id"], got.events[-1]["name"]) == ("call-s", "web_search")
    # The batch is answered without the cancelled call, once.
    answer = await fake_gemini.next("toolResponse")
    assert [r["id"] for r in answer["functionResponses"]] == ["call-w"]
    await wait_for(abandoned.is_set)
    await fake_gemini.send({"serverContent": {"turnComplete": True}})
    await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    await comm.disconnect()
    assert response_ids(fake_gemini.received) == ["call-w"]
    _, results = await tool_records(ready["conversation"])
    by_id = {r.data["id"]: r.data for r in results}
    assert by_id["call-w"]["ok"] is True
    assert (by_id["call-s"]["ok"], by_id["call-s"]["response"]) == (False, {"error": "cancelled"})


async def test_a_repeated_call_id_is_answered_once(blocking_model, alice, fake_gemini, open_meteo):
    comm = web_client(alice)
    await start_web(comm, model=blocking_model)
    await comm.send_json_to({"type": "text", "text": "weather twice"})
    await fake_gemini.next("realtimeInput")
    call = two_calls()[0]
    await fake_gemini.send({"toolCall": {"functionCalls": [call, call]}})
    answer = await fake_gemini.next("toolResponse")
    assert [r["id"] for r in answer["functionResponses"]] == ["call-w"]
    await fake_gemini.send({"serverContent": {"turnComplete": True}})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete")
    assert [t["phase"] for t in got.of("tool")] == ["started", "finished"]
    await comm.disconnect()
    assert response_ids(fake_gemini.received) == ["call-w"]


# --- a function nobody declared ------------------------------------------------------------


async def test_a_call_nobody_declared_is_answered_by_the_server_on_the_web_path(alice, fake_gemini):
    """Gemini may call a name the client never declared (a context update dropped it, a
    tool was switched off): nobody would answer it and the model would wait forever."""
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "do the thing"})
    await fake_gemini.next("realtimeInput")
    await fake_gemini.send(
        {"toolCall": {"functionCalls": [{"id": "c-1", "name": "made_up", "args": {}}]}}
    )
    answer = await fake_gemini.next("toolResponse")
    assert answer["functionResponses"] == [
        {
            "id": "c-1",
            "name": "made_up",
            "response": failed("unknown tool: made_up"),
            "scheduling": "WHEN_IDLE",
        }
    ]
    await fake_gemini.send({"serverContent": {"turnComplete": True}})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete")
    assert not [e for e in got.events if e["type"] == "tool.call"]  # nothing for the page
    assert [(t["phase"], t.get("ok")) for t in got.of("tool")] == [
        ("started", None),
        ("finished", False),
    ]
    await comm.disconnect()


async def test_a_call_nobody_declared_never_reaches_an_sdk_client(alice_token, fake_gemini):
    comm = await gemini_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "do the thing"}})
    await fake_gemini.next("realtimeInput")
    await fake_gemini.send(
        {"toolCall": {"functionCalls": [{"id": "c-2", "name": "made_up", "args": {"a": 1}}]}}
    )
    answer = await fake_gemini.next("toolResponse")
    assert [r["response"] for r in answer["functionResponses"]] == [failed("unknown tool: made_up")]
    await fake_gemini.send({"serverContent": {"turnComplete": True}})
    got = await gemini_until(comm, turn_complete)
    assert all("toolCall" not in m for m in got)
    await comm.disconnect()
    conversation = await Conversation.objects.aget(user__username="alice")
    calls, results = await tool_records(conversation.pk)
    assert [(c["name"], c["executor"]) for c in calls] == [("made_up", "server")]
    assert [r.data["ok"] for r in results] == [False]


# --- a tool running across a goAway ------------------------------------------------------


async def test_a_tool_running_at_a_goaway_is_answered_once_before_the_handover(
    alice, fake_gemini, http_routes
):
    """Gemini announces the end of the connection while a server tool runs: the bridge waits
    for the result, answers on the connection that asked (once), lets the turn finish, and
    only then resumes on a new connection from the handle that covers the whole turn."""
    gate = asyncio.Event()

    async def slow_geocode(request):
        await gate.wait()
        return httpx.Response(200, json=load_fixture("open-meteo-geocoding-paris.json"))

    http_routes[GEOCODE_KEY] = slow_geocode
    http_routes.json("GET", FORECAST, load_fixture("open-meteo-forecast.json"))
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "weather in Paris"})
    await fake_gemini.next("realtimeInput")
    first = fake_gemini.ws
    await fake_gemini.send({"toolCall": {"functionCalls": [two_calls()[0]]}})
    await wait_for(lambda: http_routes.requests)  # the tool is running
    await fake_gemini.send({"goAway": {"timeLeft": "20s"}})
    await asyncio.sleep(0.2)
    assert fake_gemini.ws is first  # no handover while the call is pending
    gate.set()
    answer = await fake_gemini.next("toolResponse")
    assert [r["id"] for r in answer["functionResponses"]] == ["call-w"]
    assert fake_gemini.ws is first  # answered on the connection that asked
    await fake_gemini.send({"serverContent": {"outputTranscription": {"text": "Mild."}}})
    await fake_gemini.send({"serverContent": {"turnComplete": True}})
    await fake_gemini.send({"sessionResumptionUpdate": {"newHandle": "h-after", "resumable": True}})
    await receive_until(comm, lambda e: e["type"] == "turn.complete")
    await wait_for(lambda: fake_gemini.ws is not first)  # the handover
    setups = [m["setup"] for m in fake_gemini.received if "setup" in m]
    assert len(setups) == 2
    assert setups[1]["sessionResumption"]["handle"] == "h-after"
    await comm.send_json_to({"type": "text", "text": "thanks"})
    await fake_gemini.next("realtimeInput")
    await comm.disconnect()
    assert response_ids(fake_gemini.received) == ["call-w"]  # exactly once, in all
