"""Function calling (blocking and NON_BLOCKING), code execution and search grounding."""

import base64
import re

import pytest
from google.genai import types

from tests.emulator.conftest import (
    MODEL_25,
    MODEL_31,
    MODEL_38,
    MODEL_TEXT,
    kinds,
    model_text,
    sdk_transcript,
    sdk_turn,
    silence,
    text_of,
    tone,
)

WEATHER = {
    "name": "get_weather",
    "description": "Current weather",
    "parameters": {
        "type": "OBJECT",
        "properties": {"units": {"type": "STRING"}, "location": {"type": "STRING"}},
        "required": ["location"],
    },
}


def functions(*declarations) -> list[dict]:
    return [{"functionDeclarations": list(declarations)}]


def is_tool_call(message: dict) -> bool:
    return "toolCall" in message


def the_call(messages: list[dict]) -> dict:
    (call,) = messages[-1]["toolCall"]["functionCalls"]
    return call


def response(call: dict, result, **extra) -> dict:
    return {
        "toolResponse": {
            "functionResponses": [
                {"id": call["id"], "name": call["name"], "response": result, **extra}
            ]
        }
    }


async def test_blocking_call_waits_for_the_matching_response(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_25,
        tools=functions({"name": "lights", "behavior": "BLOCKING"}),
        outputAudioTranscription={},
    )
    await client.send({"realtimeInput": {"text": 'call lights {"room": "kitchen"}'}})
    before = await client.until(is_tool_call)
    assert kinds(before) == ["toolCall"]
    call = the_call(before)
    assert re.fullmatch(r"function-call-\d+", call["id"])
    assert call == {"id": call["id"], "name": "lights", "args": {"room": "kitchen"}}
    await client.nothing(0.3)  # nothing more until the response
    await client.send(response(call, {"result": "ok"}))
    after = await client.turn()
    assert text_of(after) == 'lights returned {"result":"ok"}'
    assert kinds(after)[-2:] == ["generationComplete", "turnComplete+usage"]
    assert emulator.stats()["total"]["tool_calls"] == 1


async def test_weather_sentence_calls_the_weather_function_with_the_place(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_25, tools=functions({"name": "lookup"}, WEATHER), outputAudioTranscription={}
    )
    await client.send({"realtimeInput": {"text": "What's the weather in Paris, today?"}})
    call = the_call(await client.until(is_tool_call))
    assert call["name"] == "get_weather"
    assert call["args"] == {"location": "Paris"}
    await client.send(response(call, {"temp_c": 21}))
    assert text_of(await client.turn()) == 'get_weather returned {"temp_c":21}'


async def test_call_of_an_undeclared_tool_says_so(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call teleport {}"}})
    assert text_of(await client.turn()) == "no such tool: teleport"


async def test_call_with_invalid_json_arguments_says_so(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, tools=functions({"name": "f"}), outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call f {oops"}})
    assert text_of(await client.turn()) == "invalid arguments for f"


async def test_response_with_unknown_id_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send(response({"id": "function-call-1", "name": "f"}, {}))
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_barge_in_cancels_a_pending_blocking_call(start_emulator, raw_client):
    emu = await start_emulator()
    client = await raw_client(emu)
    vad = {"automaticActivityDetection": {"silenceDurationMs": 200}}
    await client.setup(MODEL_25, tools=functions({"name": "slow"}), realtimeInputConfig=vad)
    await client.send({"realtimeInput": {"text": "call slow"}})
    call = the_call(await client.until(is_tool_call))
    data = base64.b64encode(tone(0.3)).decode()
    await client.send(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": data}}}
    )
    ended = await client.turn()
    assert kinds(ended) == ["interrupted", "toolCallCancellation", "turnComplete+usage"]
    assert ended[1]["toolCallCancellation"] == {"ids": [call["id"]]}
    # A late answer to the cancelled call is ignored, not fatal.
    await client.send(response(call, {"late": True}))
    await client.nothing(0.2)


async def test_3_8_functions_are_non_blocking_by_default(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, tools=functions({"name": "fetch"}), outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call fetch"}})
    messages = await client.turn()  # the conversation goes on without waiting
    assert kinds(messages)[0] == "toolCall"
    assert text_of(messages) == "Calling fetch."
    call = the_call(messages[:1])
    await client.send(response(call, {"items": 3}))  # WHEN_IDLE by default: speaks when idle
    assert text_of(await client.turn()) == 'fetch returned {"items":3}'


async def test_non_blocking_when_idle_waits_for_the_current_reply(start_emulator, raw_client):
    emu = await start_emulator(pace=20.0)
    client = await raw_client(emu)
    await client.setup(MODEL_38, tools=functions({"name": "fetch"}), outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call fetch"}})
    call = the_call((await client.turn())[:1])
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await client.send(response(call, {"n": 1}, scheduling="WHEN_IDLE"))
    long_turn = await client.turn()
    assert "generationComplete" in kinds(long_turn)  # not interrupted
    assert text_of(await client.turn()) == 'fetch returned {"n":1}'


async def test_non_blocking_interrupt_stops_the_current_reply(start_emulator, raw_client):
    emu = await start_emulator(pace=20.0)
    client = await raw_client(emu)
    await client.setup(MODEL_38, tools=functions({"name": "fetch"}), outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call fetch"}})
    call = the_call((await client.turn())[:1])
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await client.send(response(call, {"n": 2}, scheduling="INTERRUPT"))
    long_turn = await client.turn()
    # IN_PROGRESS: the result's turn follows without new input (3.8 interactionStatus).
    assert kinds(long_turn)[-2:] == ["interrupted", "turnComplete+interactionStatus+usage"]
    assert long_turn[-1]["serverContent"]["interactionStatus"] == "IN_PROGRESS"
    assert text_of(await client.turn()) == 'fetch returned {"n":2}'


async def test_non_blocking_silent_adds_to_context_only(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, tools=functions({"name": "log"}), outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call log"}})
    call = the_call((await client.turn())[:1])
    await client.send(response(call, {"ok": True}, scheduling="SILENT"))
    await client.nothing(0.3)


async def test_non_blocking_will_continue_keeps_the_call_open(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, tools=functions({"name": "watch"}), outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call watch"}})
    call = the_call((await client.turn())[:1])
    await client.send(response(call, {"tick": 1}, willContinue=True))
    assert text_of(await client.turn()) == 'watch returned {"tick":1}'
    await client.send(response(call, {"tick": 2}))  # the last one
    assert text_of(await client.turn()) == 'watch returned {"tick":2}'
    await client.send(response(call, {"tick": 3}))  # the call is closed now
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_scheduling_inside_response_is_accepted_like_the_2025_guide(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, tools=functions({"name": "log"}))
    await client.send({"realtimeInput": {"text": "call log"}})
    call = the_call((await client.turn())[:1])
    await client.send(response(call, {"result": "ok", "scheduling": "SILENT"}))
    await client.nothing(0.3)


async def test_3_1_treats_non_blocking_declarations_as_blocking(emulator, raw_client):
    client = await raw_client(emulator)
    tools = functions({"name": "fetch", "behavior": "NON_BLOCKING"})
    await client.setup(MODEL_31, tools=tools, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call fetch"}})
    call = the_call(await client.until(is_tool_call))
    await client.nothing(0.2)
    await client.send(response(call, {"x": 1}, scheduling="SILENT"))  # ignored: sync only
    assert text_of(await client.turn()) == 'fetch returned {"x":1}'


async def test_2_5_honours_non_blocking_behavior(emulator, raw_client):
    client = await raw_client(emulator)
    tools = functions({"name": "fetch", "behavior": "NON_BLOCKING"})
    await client.setup(MODEL_25, tools=tools, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "call fetch"}})
    assert text_of(await client.turn()) == "Calling fetch."


async def test_tool_call_turn_complete_switch_reproduces_the_extra_turn_complete(
    start_emulator, raw_client
):
    emu = await start_emulator(tool_call_turn_complete=True)
    client = await raw_client(emu)
    await client.setup(MODEL_25, tools=functions({"name": "f"}))
    await client.send({"realtimeInput": {"text": "call f"}})
    messages = await client.turn()
    assert kinds(messages) == ["toolCall", "turnComplete"]
    await client.send(response(the_call(messages[:1]), {}))
    assert kinds(await client.turn())[-1] == "turnComplete+usage"


async def test_compute_emits_code_execution_parts_then_the_answer(emulator, raw_client):
    # No 3.x Live model has code execution (gemini-3.8-live page, Sept 2026): the test model.
    client = await raw_client(emulator)
    await client.setup(MODEL_TEXT, tools=[{"codeExecution": {}}], outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "compute (2 + 3) * 7"}})
    messages = await client.turn()
    parts = [
        part
        for message in messages
        for part in message.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        if "inlineData" not in part
    ]
    assert parts == [
        {"executableCode": {"language": "PYTHON", "code": "print((2 + 3) * 7)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "35\n"}},
    ]
    assert text_of(messages) == "The result is 35."


async def test_compute_in_text_modality_one_part_per_message(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_TEXT, tools=[{"codeExecution": {}}], generationConfig={"responseModalities": ["TEXT"]}
    )
    await client.send({"realtimeInput": {"text": "compute 1/0"}})
    messages = await client.turn()
    assert kinds(messages)[:2] == ["executableCode", "codeExecutionResult"]
    result = messages[1]["serverContent"]["modelTurn"]["parts"][0]["codeExecutionResult"]
    assert result["outcome"] == "OUTCOME_FAILED"
    assert "ZeroDivisionError" in result["output"]
    assert model_text(messages).startswith("The computation failed")


async def test_compute_refuses_anything_but_arithmetic(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_TEXT, tools=[{"codeExecution": {}}], outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "compute __import__('os').system('id')"}})
    messages = await client.turn()
    assert "executableCode" not in kinds(messages)
    assert text_of(messages) == "You said: compute __import__('os').system('id')"


async def test_compute_without_code_execution_is_plain_text(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "compute 2+2"}})
    assert text_of(await client.turn()) == "You said: compute 2+2"


async def test_search_answers_with_grounding_metadata(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, tools=[{"googleSearch": {}}], outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "search for the tallest tower"}})
    messages = await client.turn()
    assert text_of(messages) == "Here is what I found about the tallest tower."
    shapes = kinds(messages)
    assert shapes[-3:] == [
        "groundingMetadata",
        "generationComplete",
        "turnComplete+interactionStatus+usage",
    ]
    grounding = messages[-3]["serverContent"]["groundingMetadata"]
    assert grounding["webSearchQueries"] == ["the tallest tower"]
    assert grounding["groundingChunks"][0]["web"]["domain"] == "example.org"
    assert "renderedContent" in grounding["searchEntryPoint"]


# --- the official SDK ------------------------------------------------------------------


async def test_sdk_blocking_tool_round_trip(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER)])],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with client.aio.live.connect(model=MODEL_25, config=config) as session:
        await session.send_realtime_input(text="weather in Lisbon")
        call = None
        async for message in session.receive():
            if message.tool_call:
                call = message.tool_call.function_calls[0]
                break
        assert call.name == "get_weather"
        assert call.args == {"location": "Lisbon"}
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"sky": "clear"})
            ]
        )
        messages = await sdk_turn(session)
    assert sdk_transcript(messages) == 'get_weather returned {"sky":"clear"}'


@pytest.mark.parametrize(
    ("scheduling", "expected"),
    [("WHEN_IDLE", 'fetch returned {"v":1}'), ("INTERRUPT", 'fetch returned {"v":1}')],
)
async def test_sdk_non_blocking_tool_with_scheduling(sdk, scheduling, expected):
    _, client = sdk
    declaration = types.FunctionDeclaration(name="fetch", behavior="NON_BLOCKING")
    config = types.LiveConnectConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="call fetch")
        first = await sdk_turn(session)
        call = next(m.tool_call.function_calls[0] for m in first if m.tool_call)
        assert sdk_transcript(first) == "Calling fetch."
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id, name="fetch", response={"v": 1}, scheduling=scheduling
                )
            ]
        )
        assert sdk_transcript(await sdk_turn(session)) == expected


async def test_sdk_cancellation_and_code_execution_and_grounding(tls_emulator):
    from tests.emulator.conftest import sdk_client

    emu = await tls_emulator()
    client = sdk_client(emu)
    config = types.LiveConnectConfig(
        tools=[
            types.Tool(google_search=types.GoogleSearch()),
            types.Tool(code_execution=types.ToolCodeExecution()),
            types.Tool(
                function_declarations=[types.FunctionDeclaration(name="slow", behavior="BLOCKING")]
            ),
        ],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=200)
        ),
    )
    # Code execution: the test model (no 3.x Live model has it: gemini-3.8-live page, Sept 2026).
    async with client.aio.live.connect(model=MODEL_TEXT, config=config) as session:
        await session.send_realtime_input(text="compute 6*7")
        messages = await sdk_turn(session)
        parts = [
            p
            for m in messages
            if m.server_content and m.server_content.model_turn
            for p in m.server_content.model_turn.parts
        ]
        assert parts[0].executable_code.code == "print(6*7)"
        assert parts[1].code_execution_result.output == "42\n"

        await session.send_realtime_input(text="search pastra")
        messages = await sdk_turn(session)
        grounding = next(
            m.server_content.grounding_metadata
            for m in messages
            if m.server_content.grounding_metadata
        )
        assert grounding.web_search_queries == ["pastra"]

        await session.send_realtime_input(text="call slow")
        call, cancelled, interrupted = None, None, False
        async for message in session.receive():
            if message.tool_call:
                call = message.tool_call.function_calls[0]
                speech = tone(0.3) + silence(0.3)
                await session.send_realtime_input(
                    audio=types.Blob(data=speech, mime_type="audio/pcm;rate=16000")
                )
            if message.tool_call_cancellation:
                cancelled = message.tool_call_cancellation.ids
            if message.server_content and message.server_content.interrupted:
                interrupted = True
        assert interrupted
        assert cancelled == [call.id]


async def test_sdk_non_blocking_will_continue_then_silent(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="watch")])],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="call watch")
        first = await sdk_turn(session)
        call = next(m.tool_call.function_calls[0] for m in first if m.tool_call)
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id, name="watch", response={"tick": 1}, will_continue=True
                )
            ]
        )
        assert sdk_transcript(await sdk_turn(session)) == 'watch returned {"tick":1}'
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id, name="watch", response={"tick": 2}, scheduling="SILENT"
                )
            ]
        )
        await session.send_realtime_input(text="/history")
        assert sdk_transcript(await sdk_turn(session)) == "history: 1 user turns"


@pytest.mark.parametrize(
    ("tool", "accepted"),
    [
        (types.Tool(code_execution=types.ToolCodeExecution()), False),
        (types.Tool(url_context=types.UrlContext()), False),
        (types.Tool(google_search=types.GoogleSearch()), True),
    ],
)
async def test_sdk_gemini_3_8_tools_as_google_documents_them(tls_emulator, tool, accepted):
    """gemini-3.8-live page (Sept 2026): code execution and URL context "Not supported",
    search grounding supported. Refusals close 1008 as the real service does."""
    from google.genai import errors

    from tests.emulator.conftest import sdk_client

    client = sdk_client(await tls_emulator())
    config = types.LiveConnectConfig(
        tools=[tool], output_audio_transcription=types.AudioTranscriptionConfig()
    )
    if accepted:
        async with client.aio.live.connect(model=MODEL_38, config=config) as session:
            await session.send_realtime_input(text="hello")
            assert sdk_transcript(await sdk_turn(session)) == "You said: hello"
        return
    with pytest.raises(errors.APIError) as refused:
        async with client.aio.live.connect(model=MODEL_38, config=config):
            pass
    assert refused.value.code == 1008
    assert "Operation is not implemented, or supported, or enabled." in str(refused.value)


async def test_an_error_response_is_said_as_a_sentence_not_as_raw_json(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_25, tools=functions({"name": "lookup"}, WEATHER), outputAudioTranscription={}
    )
    await client.send({"realtimeInput": {"text": "What's the weather in Paris?"}})
    call = the_call(await client.until(is_tool_call))
    error = {
        "status": "error",
        "error": "the weather service could not be reached",
        "retryable": True,
    }
    await client.send(response(call, error))
    said = text_of(await client.turn())
    assert said == "get_weather failed: The weather service could not be reached."
    # An error object is read for its message; a result without `error` stays JSON.
    await client.send({"realtimeInput": {"text": "What's the weather in Oslo?"}})
    call = the_call(await client.until(is_tool_call))
    await client.send(response(call, {"error": {"code": 503, "message": "Try later"}}))
    assert text_of(await client.turn()) == "get_weather failed: Try later."
