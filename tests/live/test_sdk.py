"""The official google-genai SDK, unchanged, through Pastra (daphne over TLS) to the emulator:
text, audio, client functions and session resumption with Pastra's own handles."""

import ssl

import pytest
from google import genai
from google.genai import errors, types

from tests.live.conftest import MODEL, frames, setups, silence, tone

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("settled"),
]


def client(server, tls_files, token: str) -> genai.Client:
    context = ssl.create_default_context(cafile=tls_files[0])
    return genai.Client(
        api_key=token,
        http_options=types.HttpOptions(
            base_url=server.base_url + "/",  # the SDK then asks for //ws/... as with Google
            api_version="v1beta",
            async_client_args={"ssl": context},
        ),
    )


async def one_turn(session) -> tuple[str, int, list]:
    """(output transcript, audio bytes, messages) of one model turn."""
    words, audio, messages = [], 0, []
    async for message in session.receive():
        messages.append(message)
        content = message.server_content
        if content and content.output_transcription and content.output_transcription.text:
            words.append(content.output_transcription.text)
        if message.data:
            audio += len(message.data)
    return "".join(words), audio, messages


async def test_sdk_text_and_audio(pastra_tls, tls_files, alice_token):
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        input_audio_transcription=types.AudioTranscriptionConfig(),
    )
    sdk = client(pastra_tls, tls_files, alice_token)
    async with sdk.aio.live.connect(model=MODEL, config=config) as session:
        await session.send_realtime_input(text="hello from the SDK")
        text, audio, _ = await one_turn(session)
        assert text == "You said: hello from the SDK"
        assert audio > 0
        for frame in frames(tone(700) + silence(600)):
            await session.send_realtime_input(
                audio=types.Blob(data=frame, mime_type="audio/pcm;rate=16000")
            )
        text, audio, messages = await one_turn(session)
        heard = [
            m.server_content.input_transcription.text
            for m in messages
            if m.server_content and m.server_content.input_transcription
        ]
        assert heard == ["(speech 0.7 s)"]
        assert text == "I heard 0.7 seconds of audio."


async def test_sdk_client_function(pastra_tls, tls_files, alice_token):
    declaration = types.FunctionDeclaration(
        name="open_door",
        description="Opens a door.",
        parameters={"type": "OBJECT", "properties": {"door": {"type": "STRING"}}},
        behavior=types.Behavior.BLOCKING,
    )
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        tools=[types.Tool(function_declarations=[declaration])],
    )
    sdk = client(pastra_tls, tls_files, alice_token)
    async with sdk.aio.live.connect(model=MODEL, config=config) as session:
        await session.send_realtime_input(text='call open_door {"door": "front"}')
        call = None
        async for message in session.receive():
            if message.tool_call:
                call = message.tool_call.function_calls[0]
                break
        assert call.name == "open_door"
        assert call.args == {"door": "front"}
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"opened": True})
            ]
        )
        text, _, _ = await one_turn(session)
        assert text == 'open_door returned {"opened":true}'


async def test_sdk_session_resumption_with_pastra_handles(pastra_tls, tls_files, alice_token):
    sdk = client(pastra_tls, tls_files, alice_token)

    def config(handle=None):
        return types.LiveConnectConfig(
            response_modalities=["AUDIO"],
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(handle=handle),
        )

    handle = None
    async with sdk.aio.live.connect(model=MODEL, config=config()) as session:
        for text in ("first", "second"):
            await session.send_realtime_input(text=text)
            await one_turn(session)
        async for message in session.receive():
            update = message.session_resumption_update
            if update and update.resumable and update.new_handle:
                handle = update.new_handle
                break
    assert handle
    assert not handle.startswith("Cg")  # the emulator's (Google's) handles stay server-side
    async with sdk.aio.live.connect(model=MODEL, config=config(handle)) as session:
        await session.send_realtime_input(text="/history")
        text, _, _ = await one_turn(session)
        assert text == "history: 2 user turns"


async def test_sdk_bad_token_and_bad_handle(pastra_tls, tls_files, alice_token, thread_emulator):
    before = setups(thread_emulator)
    sdk = client(pastra_tls, tls_files, "pst_nope")
    with pytest.raises(errors.APIError) as caught:
        async with sdk.aio.live.connect(model=MODEL, config={"response_modalities": ["AUDIO"]}):
            pass
    assert caught.value.code == 1007
    sdk = client(pastra_tls, tls_files, alice_token)
    resumption = types.SessionResumptionConfig(handle="forged-handle")
    with pytest.raises(errors.APIError) as caught:
        async with sdk.aio.live.connect(
            model=MODEL, config=types.LiveConnectConfig(session_resumption=resumption)
        ):
            pass
    assert caught.value.code == 1008
    assert "session not found" in str(caught.value)
    assert setups(thread_emulator) == before
