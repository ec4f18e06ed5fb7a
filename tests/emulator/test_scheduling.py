"""NON_BLOCKING scheduling (gemini-3.8-live's default) and BLOCKING cancellation, through the SDK.

Live tools page and the 3.8 migration notes (ai.google.dev, Sept 2026): SILENT adds the
result to the context only, WHEN_IDLE speaks it after the current turn, INTERRUPT interrupts
a running reply and speaks it; `willContinue` keeps the call open; a BLOCKING call (declared
`behavior: BLOCKING` on 3.8) is cancelled by new user input (`toolCallCancellation`).
"""

from google.genai import types

from tests.emulator.conftest import MODEL_38, sdk_client, sdk_transcript, sdk_turn

MODEL_38_THINKING = "gemini-3.8-live-extended-thinking"


def _config(behavior=None):
    declaration = types.FunctionDeclaration(name="fetch", behavior=behavior)
    return types.LiveConnectConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )


def _answer(call, scheduling=None, **response):
    return [
        types.FunctionResponse(id=call.id, name=call.name, response=response, scheduling=scheduling)
    ]


async def _call(session):
    await session.send_realtime_input(text="call fetch")
    first = await sdk_turn(session)
    assert sdk_transcript(first) == "Calling fetch."  # the turn went on without waiting
    return next(m.tool_call.function_calls[0] for m in first if m.tool_call)


async def _during_long_reply(session, call, scheduling):
    """Start `/long`, answer `call` with `scheduling` once its audio flows; every message
    up to the IDLE that ends the interaction, as (interrupted?, transcript) per turn."""
    await session.send_realtime_input(text="/long")
    turns, current, interrupted, answered = [], [], False, False
    async for message in session.receive():
        content = message.server_content
        current.append(message)
        if content and content.model_turn and not answered:
            answered = True
            await session.send_tool_response(function_responses=_answer(call, scheduling, n=1))
        if content and content.interrupted:
            interrupted = True
        if content and content.turn_complete:
            turns.append((interrupted, sdk_transcript(current)))
            current, interrupted = [], False
    return turns


async def test_sdk_when_idle_result_is_spoken_after_the_running_reply(tls_emulator):
    client = sdk_client(await tls_emulator(pace=20.0))
    async with client.aio.live.connect(model=MODEL_38, config=_config()) as session:
        call = await _call(session)
        turns = await _during_long_reply(session, call, types.FunctionResponseScheduling.WHEN_IDLE)
    assert [interrupted for interrupted, _ in turns] == [False, False]
    assert turns[0][1].startswith("This is a long answer")  # finished in full
    assert turns[1][1] == 'fetch returned {"n":1}'


async def test_sdk_interrupt_result_interrupts_the_running_reply_then_speaks(tls_emulator):
    client = sdk_client(await tls_emulator(pace=20.0))
    async with client.aio.live.connect(model=MODEL_38, config=_config()) as session:
        call = await _call(session)
        turns = await _during_long_reply(session, call, types.FunctionResponseScheduling.INTERRUPT)
    assert [interrupted for interrupted, _ in turns] == [True, False]
    assert turns[1][1] == 'fetch returned {"n":1}'


async def test_sdk_silent_result_is_not_spoken_but_is_remembered(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38, config=_config()) as session:
        call = await _call(session)
        await session.send_tool_response(
            function_responses=_answer(call, types.FunctionResponseScheduling.SILENT, n=1)
        )
        await session.send_realtime_input(text="hello")
        # The next turn is the reply to "hello": no result turn came in between.
        assert sdk_transcript(await sdk_turn(session)) == "You said: hello"


async def test_sdk_every_will_continue_response_is_honoured(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38, config=_config()) as session:
        call = await _call(session)
        for tick in (1, 2, 3):
            response = types.FunctionResponse(
                id=call.id, name="fetch", response={"tick": tick}, will_continue=tick < 3
            )
            await session.send_tool_response(function_responses=[response])
            assert sdk_transcript(await sdk_turn(session)) == f'fetch returned {{"tick":{tick}}}'


async def test_sdk_blocking_call_on_3_8_is_cancelled_by_new_input(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38, config=_config("BLOCKING")) as session:
        await session.send_realtime_input(text="call fetch")
        call, cancelled, interrupted, messages = None, None, False, []
        async for message in session.receive():
            messages.append(message)
            if message.tool_call:
                call = message.tool_call.function_calls[0]
                await session.send_realtime_input(text="never mind")
            if message.tool_call_cancellation:
                cancelled = message.tool_call_cancellation.ids
            if message.server_content and message.server_content.interrupted:
                interrupted = True
    assert interrupted
    assert cancelled == [call.id]
    # The cancelled turn ends IN_PROGRESS (the new input is queued), so receive() runs on
    # into the answer to it and stops at its IDLE.
    assert sdk_transcript(messages) == "You said: never mind"
